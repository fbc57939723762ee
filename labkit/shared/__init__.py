"""What the client side and the embedded cluster share, as leaf modules.

Each module here imports nothing of labkit outside this package (import-linter checks it, see pyproject.toml):

- :mod:`.layout`: ``$LABKIT_HOME``, a cluster's state directory and its ``cluster.json``;
- :mod:`.imagestore`: the on-disk store of built images (``DiskImages``, ``StoredImage``,
  ``ImageConfig``), written by the builder, read by the kubelet;
- :mod:`.imageref`: the one parser of image references (``posts:1.0``, ``reg:5000/a/b@sha256:...``);
- :mod:`.timeutil`: RFC 3339 timestamps and kubectl's ages;
- :mod:`.contract`: the ``labkit.dev/...`` annotations and labels that cross the boundary;
- :mod:`.podports`: where a pod's port is reached (its pod IP; privileged ports offset by 20000).
"""
