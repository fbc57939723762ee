"""Layers: what one build step changed in an image's files, cached under its key.

A layer is ``layers/<key>/layer.json`` plus the files the step added or changed in ``fs/``,
and the paths it deleted (whiteouts). Files a RUN step wrote that hold the absolute path of
the root they were made in (a console script's ``#!`` line, a venv's activate script) are
stored with a placeholder instead, and get the right root back wherever the layer is applied,
so a cached layer works in any image.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labkit.shared.imagestore import DiskImages

PLACEHOLDER = b"/@@labkit-image-root@@"
RELOCATE_MAX = 8 * 1024 * 1024  # bigger files are left as they are

Snapshot = dict[str, tuple[int, int, int, int, str]]  # path -> (mode, size, mtime, ctime, link)


@dataclass(frozen=True)
class LayerInfo:
    """What ``layer.json`` records about one step."""

    key: str
    created_by: str
    created: str
    size: int = 0
    empty: bool = True  # the step changed only the config
    deleted: tuple[str, ...] = ()
    relocate: tuple[str, ...] = field(default=())


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root`` with what tells a change (mode, size, times, link target)."""
    found: Snapshot = {}
    stack = [("", str(root))]
    while stack:
        rel_dir, full_dir = stack.pop()
        with os.scandir(full_dir) as it:
            for entry in it:
                rel = rel_dir + entry.name
                info = entry.stat(follow_symlinks=False)
                link = os.readlink(entry.path) if entry.is_symlink() else ""
                found[rel] = (info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns, link)
                if stat.S_ISDIR(info.st_mode):
                    stack.append((rel + "/", entry.path))
    return found


def changes(before: Snapshot, after: Snapshot) -> tuple[list[str], list[str]]:
    """(added or changed paths, deleted paths), each sorted; a deleted directory's contents
    are not listed separately."""
    changed = sorted(p for p, v in after.items() if before.get(p) != v)
    gone = sorted(p for p in before if p not in after)
    deleted = [p for p in gone if not any(p.startswith(d + "/") for d in gone if d != p)]
    return changed, deleted


class LayerCache:
    """The layers of one store."""

    def __init__(self, store: DiskImages) -> None:
        self.store = store
        self.dir = store.layers_dir

    def find(self, key: str) -> LayerInfo | None:
        """The cached layer with this key, or None."""
        try:
            data = json.loads((self.dir / key / "layer.json").read_text())
        except (OSError, ValueError):
            return None
        return LayerInfo(**{**data, "deleted": tuple(data["deleted"]), "relocate": tuple(data["relocate"])})

    def commit(
        self, key: str, created_by: str, created: str, root: Path, paths: list[str], deleted: list[str],
        relocatable: bool,
    ) -> LayerInfo:  # fmt: skip
        """Store the step that wrote ``paths`` (and deleted ``deleted``) in ``root`` as the layer
        ``key``; with ``relocatable``, files holding ``root``'s path get the placeholder."""
        with self.store.workspace("layer-") as staged:
            fs = staged / "fs"
            fs.mkdir()
            size, relocate = 0, []
            needle = str(root).encode()
            for rel in paths:
                size += _copy_out(root / rel, fs / rel)
                if relocatable and _replace_in(fs / rel, needle, PLACEHOLDER):
                    relocate.append(rel)
            info = LayerInfo(
                key, created_by, created, size, not paths and not deleted, tuple(deleted), tuple(relocate)
            )
            (staged / "layer.json").write_text(json.dumps(asdict(info)))
            self.dir.mkdir(parents=True, exist_ok=True)
            try:
                staged.rename(self.dir / key)
            except OSError:
                existing = self.find(key)
                if existing is None:
                    raise
                return existing
        return info

    def apply(self, info: LayerInfo, root: Path) -> None:
        """Lay the layer's changes over ``root``."""
        for rel in info.deleted:
            _remove(root / rel)
        if info.empty:
            return
        source = self.dir / info.key / "fs"
        _merge(source, root)
        needle = str(root).encode()
        for rel in info.relocate:
            _replace_in(root / rel, PLACEHOLDER, needle)


def relocate(root: Path, paths: set[str], old: Path, new: Path) -> None:
    """Rewrite ``old`` to ``new`` in the files (of ``paths``) that name the root they were made in."""
    for rel in paths:
        _replace_in(root / rel, str(old).encode(), str(new).encode())


def _copy_out(src: Path, dst: Path) -> int:
    """Copy one path (not a directory's contents) from a root into a layer; its size."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    info = src.lstat()
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src), dst)
        return 0
    if stat.S_ISDIR(info.st_mode):
        dst.mkdir(exist_ok=True)
        os.chmod(dst, stat.S_IMODE(info.st_mode))
        return 0
    shutil.copy2(src, dst, follow_symlinks=False)
    return info.st_size


def _merge(source: Path, root: Path) -> None:
    """Copy a layer's tree over a root: directories merge, files and links replace."""
    for top, dirs, files in os.walk(source):
        rel = os.path.relpath(top, source)
        target_dir = root if rel == "." else root / rel
        for name in dirs[:]:
            src, dst = Path(top) / name, target_dir / name
            if src.is_symlink():
                dirs.remove(name)
                files.append(name)
                continue
            if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
                _remove(dst)
            dst.mkdir(exist_ok=True)
            os.chmod(dst, stat.S_IMODE(src.stat().st_mode))
        for name in files:
            src, dst = Path(top) / name, target_dir / name
            if dst.is_symlink() or dst.exists():
                _remove(dst)
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy2(src, dst)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _replace_in(path: Path, old: bytes, new: bytes) -> bool:
    """Replace ``old`` with ``new`` in a text file; whether it held ``old``. Binary files (with
    a NUL byte), links and big files are left alone."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > RELOCATE_MAX:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    if old not in data or b"\0" in data:
        return False
    path.write_bytes(data.replace(old, new))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    return True
