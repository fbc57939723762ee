"""The images labkit's own builder made: list, inspect, tag, remove and export them.

A thin layer over :class:`labkit.shared.imagestore.DiskImages` that speaks in labkit's
errors (:class:`~labkit.errors.ImageError`, with a hint), for the ``labkit image`` commands
and the notebook API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.errors import ImageError
from labkit.images import oci
from labkit.images.embedded_builder import TAG
from labkit.shared.imageref import normalize
from labkit.shared.imagestore import DiskImages, ImageInUseError, StoredImage


def store(home: Path | None = None) -> DiskImages:
    """The image store of ``home`` (default ``$LABKIT_HOME``)."""
    return DiskImages(home)


def get(reference: str, home: Path | None = None) -> StoredImage:
    """The image a tag or ID names; raises :class:`ImageError`."""
    found = store(home).find(reference)
    if found is None:
        raise ImageError(
            f"no image {reference} in labkit's store",
            "list the images with: labkit image ls (build one with: labkit build -t NAME:VERSION .)",
        )
    return found


def list_images(home: Path | None = None) -> list[StoredImage]:
    """Every image, newest first."""
    return store(home).list()


def inspect(reference: str, home: Path | None = None) -> dict[str, Any]:
    """What ``docker image inspect`` shows for an image."""
    image = get(reference, home)
    return {
        "Id": image.id,
        "RepoTags": list(image.tags),
        "Created": image.created,
        "Size": image.size,
        "Architecture": image.config.get("architecture", ""),
        "Os": image.config.get("os", "linux"),
        "Config": image.config.get("config", {}),
        "History": image.config.get("history", []),
        "RootFS": image.config.get("rootfs", {}),
        "Labkit": {**image.config.get("labkit", {}), "root": str(image.rootfs)},
    }


def tag(source: str, target: str, home: Path | None = None) -> str:
    """Give an image another tag; returns the normalized tag."""
    image = get(source, home)
    if not TAG.match(target):
        raise ImageError(
            f"invalid tag {target!r}", "use lower-case letters, digits and . _ - / and an optional :version"
        )
    return store(home).tag(target, image.id)


def remove(reference: str, force: bool = False, home: Path | None = None) -> list[str]:
    """``docker rmi``: what was untagged and deleted."""
    get(reference, home)
    try:
        return store(home).remove(reference, force)
    except ImageInUseError as e:
        raise ImageError(str(e), "remove the tags one by one, or use --force") from None


def export(reference: str, dest: Path, fmt: str = "tar", home: Path | None = None) -> Path:
    """Write an image as an OCI image layout: a tar file or a directory."""
    image = get(reference, home)
    if dest.exists():
        raise ImageError(f"{dest} already exists", "choose a new path, or delete the old one first")
    try:
        return oci.export(store(home), image, dest, fmt)
    except OSError as e:
        raise ImageError(f"cannot export {normalize(reference)} to {dest}: {e}", "check the path") from None
