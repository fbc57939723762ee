"""The on-disk image store: images labkit built, as the kubelet and the builder see them.

Layout under ``$LABKIT_HOME/images``::

    layers/<key>/            one cached build step: layer.json and its files in fs/
    images/<hex>/            one image: config.json (Docker's image config), info.json
                             (size, creation time) and rootfs/, the image's filesystem
    tmp/                     work in progress; a build writes here and renames into place
    repositories.json        tags: {"posts:1.0": "sha256:<hex>"}

Everything is written to ``tmp/`` first and moved into place with one rename, so a failed or
killed build never leaves a half-written layer or image behind. The kubelet only reads
(:mod:`labkit.embedded.imagesource` turns a stored image into one it can run);
:meth:`StoredImage.image_config` is what a container started from it gets, with a ``PATH`` that
puts the image's own bin directories first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.shared.imageref import normalize
from labkit.shared.layout import labkit_home

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageConfig:
    """What a container gets from its image (Docker's image config)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    exposed_ports: tuple[int, ...] = ()


class ImageNotFoundError(LookupError):
    """No image in the store has this reference or ID."""


class ImageInUseError(Exception):
    """An image cannot be removed: another image is built from it, or it has several tags."""


@dataclass(frozen=True)
class StoredImage:
    """An image in the store: its ID, tags, Docker-style config and where its files are."""

    id: str
    tags: tuple[str, ...]
    config: dict[str, Any]  # Docker's image config JSON
    path: Path
    size: int
    created: str

    @property
    def rootfs(self) -> Path:
        """The image's filesystem."""
        return self.path / "rootfs"

    @property
    def layers(self) -> tuple[str, ...]:
        """The keys of the layers its files came from, oldest first."""
        return tuple(self.config.get("labkit", {}).get("layers", ()))

    @property
    def parent(self) -> str:
        """The ID of the image it was built FROM, if labkit built that one too."""
        return str(self.config.get("labkit", {}).get("parent", ""))

    def image_config(self) -> ImageConfig:
        """What a container started from it gets; its ``PATH`` looks in the image first."""
        config = self.config.get("config") or {}
        env = dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e)
        env["PATH"] = rooted_path(self.rootfs, env.get("PATH") or DEFAULT_PATH)
        ports = []
        for key in config.get("ExposedPorts") or {}:
            number = str(key).split("/")[0]
            if number.isdigit():
                ports.append(int(number))
        return ImageConfig(
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            env=tuple(env.items()),
            working_dir=str(config.get("WorkingDir") or ""),
            exposed_ports=tuple(ports),
        )


class DiskImages:
    """The image store of one ``$LABKIT_HOME``."""

    def __init__(self, home: Path | None = None) -> None:
        self.root = (home or labkit_home()) / "images"
        self.layers_dir = self.root / "layers"
        self.images_dir = self.root / "images"
        self.tmp_dir = self.root / "tmp"
        self.tags_file = self.root / "repositories.json"

    # -- reading ---------------------------------------------------------------------------

    def tags(self) -> dict[str, str]:
        """Every tag and the image ID it names."""
        try:
            return dict(json.loads(self.tags_file.read_text()))
        except (OSError, ValueError):
            return {}

    def find(self, reference: str) -> StoredImage | None:
        """The image a tag, a full ID or an ID prefix (12+ hex digits) names, or None."""
        tags = self.tags()
        image_id = tags.get(normalize(reference))
        if image_id is None:
            image_id = self._by_id(reference)
        if image_id is None:
            return None
        return self._load(image_id, tuple(sorted(t for t, i in tags.items() if i == image_id)))

    def get(self, reference: str) -> StoredImage:
        """Like :meth:`find`; raises :class:`ImageNotFoundError`."""
        found = self.find(reference)
        if found is None:
            raise ImageNotFoundError(reference)
        return found

    def list(self) -> list[StoredImage]:
        """Every image, newest first."""
        tags = self.tags()
        found = []
        for path in self.images_dir.glob("*") if self.images_dir.exists() else []:
            image_id = "sha256:" + path.name
            image = self._load(image_id, tuple(sorted(t for t, i in tags.items() if i == image_id)))
            if image is not None:
                found.append(image)
        return sorted(found, key=lambda i: i.created, reverse=True)

    def has_image(self, image_id: str) -> bool:
        """Whether the image with this full ID is stored."""
        return (self._image_path(image_id) / "config.json").exists()

    def _by_id(self, text: str) -> str | None:
        hexpart = text.removeprefix("sha256:")
        if len(hexpart) < 12 or not all(c in "0123456789abcdef" for c in hexpart):
            return None
        matches = [p.name for p in self.images_dir.glob(hexpart + "*")] if self.images_dir.exists() else []
        return "sha256:" + matches[0] if len(matches) == 1 else None

    def _image_path(self, image_id: str) -> Path:
        return self.images_dir / image_id.removeprefix("sha256:")

    def _load(self, image_id: str, tags: tuple[str, ...]) -> StoredImage | None:
        path = self._image_path(image_id)
        try:
            config = json.loads((path / "config.json").read_text())
            info = json.loads((path / "info.json").read_text())
        except (OSError, ValueError):
            return None
        return StoredImage(image_id, tags, config, path, int(info["size"]), str(info["created"]))

    # -- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def workspace(self, prefix: str = "build-") -> Iterator[Path]:
        """A fresh directory under ``tmp/``, removed afterwards (whatever was not moved out)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp_dir))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def commit_image(self, staged: Path, image_id: str) -> Path:
        """Move a staged image directory (config.json, info.json, rootfs/) into place; if
        the image is already there, the staged copy is dropped. Returns its final path."""
        final = self.image_path(image_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            staged.rename(final)
        except OSError:
            if not self.has_image(image_id):
                raise
        return final

    def image_path(self, image_id: str) -> Path:
        """Where the image with this ID lives (whether or not it exists yet)."""
        return self._image_path(image_id)

    def tag(self, reference: str, image_id: str) -> str:
        """Point a tag at an image; returns the normalized tag."""
        name = normalize(reference)
        with self._locked_tags() as tags:
            tags[name] = image_id
        return name

    def untag(self, reference: str) -> str:
        """Remove a tag; returns the ID it named. Raises :class:`ImageNotFoundError`."""
        name = normalize(reference)
        with self._locked_tags() as tags:
            if name not in tags:
                raise ImageNotFoundError(reference)
            return tags.pop(name)

    def remove(self, reference: str, force: bool = False) -> list[str]:
        """``docker rmi``: untag a tag; delete the image once no tag names it. What was done,
        as lines like ``Untagged: posts:1.0`` and ``Deleted: sha256:...``."""
        image = self.get(reference)
        name = normalize(reference)
        done = []
        if name in image.tags:
            self.untag(name)
            done.append(f"Untagged: {name}")
            if len(image.tags) > 1:
                return done
        elif len(image.tags) > 1 and not force:
            raise ImageInUseError(
                f"image {image.id[7:19]} has tags {', '.join(image.tags)}: remove them one by one, "
                "or use --force"
            )
        else:
            for tag in image.tags:
                self.untag(tag)
                done.append(f"Untagged: {tag}")
        children = [i.id for i in self.list() if i.parent == image.id and i.id != image.id]
        if children and not force:
            done.append(f"Kept: {image.id} (images {', '.join(c[7:19] for c in children)} build on it)")
            return done
        self._delete_dir(image.path)
        done.append(f"Deleted: {image.id}")
        return done

    def _delete_dir(self, path: Path) -> None:
        """Rename out of the way first, so no reader ever sees a half-deleted image."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        doomed = Path(tempfile.mkdtemp(prefix="rm-", dir=self.tmp_dir))
        path.rename(doomed / "image")
        shutil.rmtree(doomed, ignore_errors=True)

    @contextlib.contextmanager
    def _locked_tags(self) -> Iterator[dict[str, str]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tags = self.tags()
            yield tags
            tmp = self.tags_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(dict(sorted(tags.items())), indent=1))
            os.replace(tmp, self.tags_file)


def rooted_path(root: Path, path: str) -> str:
    """``PATH`` with the image's own copy of each directory (where it exists) first."""
    inside = [str(root / d.lstrip("/")) for d in path.split(":") if d.startswith("/")]
    return ":".join([d for d in inside if os.path.isdir(d)] + path.split(":"))
