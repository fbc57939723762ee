"""The kubelet's view of the image store: built images as :class:`Image` s, then the built-ins.

The store itself (:class:`~labkit.shared.imagestore.DiskImages`) is shared with the builder,
which writes it; the kubelet only reads it through :class:`DiskImageSource`.
"""

from __future__ import annotations

from labkit.embedded.runnable_images import Image, ImageStore
from labkit.shared.imagestore import DiskImages, StoredImage


def runnable(stored: StoredImage, reference: str) -> Image:
    """The kubelet's :class:`Image` for a stored image: its config, its root directory, and a
    ``PATH`` whose directories inside the image come before the host's."""
    return Image(
        name=reference,
        id=stored.id,
        config=stored.image_config(),
        root=stored.rootfs,
        size=stored.size,
        local=True,
    )


class DiskImageSource:
    """The images labkit built, as an :class:`ImageStore` the kubelet pulls from."""

    def __init__(self, store: DiskImages) -> None:
        self.store = store

    def resolve(self, image: str) -> Image | None:
        """The runnable image a reference names, or None when the store does not have it."""
        stored = self.store.find(image)
        return None if stored is None else runnable(stored, image)


class LayeredImages:
    """Stores asked in turn: the first that has an image wins."""

    def __init__(self, *stores: ImageStore) -> None:
        self.stores = stores

    def pull(self, image: str) -> Image | None:
        """Fetch the image from the first store that can (slow: call it off the event loop)."""
        for store in self.stores:
            pull = getattr(store, "pull", None)
            found = pull(image) if pull is not None else None
            if found is not None:
                return found
        return None

    def resolve(self, image: str) -> Image | None:
        """The image from the first store that has it, or None."""
        for store in self.stores:
            found = store.resolve(image)
            if found is not None:
                return found
        return None
