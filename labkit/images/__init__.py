"""Images: building them from a Dockerfile and keeping them.

``models`` holds what every builder reports (:class:`~labkit.images.models.BuildResult`,
:class:`~labkit.images.models.BuildStep`) and ``dockerfile`` is the one Dockerfile parser both
builders use. ``embedded_builder`` builds without a daemon into the on-disk store that the
embedded cluster's kubelet runs images from (:mod:`labkit.shared.imagestore`);
``docker_builder`` builds with a Docker Engine. ``local`` lists, tags, removes and exports
the images in that store.
"""
