"""Images: building them from a Dockerfile and keeping them.

``models`` holds what every builder reports (:class:`~labkit.images.models.BuildResult`,
:class:`~labkit.images.models.BuildStep`). ``embedded_builder`` builds without a daemon into the
on-disk store that the embedded cluster's kubelet runs images from
(:mod:`labkit.embedded.imagestore`).
"""
