"""What a sandboxed process sees: its own root directory as ``/``, with borrowed host paths on top.

A :class:`View` is data: a host directory that becomes ``/`` (the image's files, the
container's or the build's own copy, writable), and :class:`Mount` entries placed over it
in order. :func:`borrowed` lists what every view borrows from the host, read-only: the
programs and libraries (``/usr``, ``/bin``, ``/lib``, ...), each entry of ``/etc`` except those
a container must own (``hosts``, ``hostname``, ``resolv.conf``, ``passwd``, ...), and the
prefixes of interpreters that live elsewhere (a pyenv or conda Python). Where the image has
files of its own below a borrowed directory (a Python image's ``/usr/local``), the image's
copy is mounted over the host's.

The isolation tools (:mod:`labkit.sandbox.isolation`) turn a view into a command line. A
mount needs a mount point; :meth:`View.stubs` creates the missing ones in the root, and
:meth:`View.remove_stubs` takes them away again, so a build step leaves no trace of them in
its layer.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Host directories every view borrows read-only (those that exist; symlinks are kept as links).
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Entries of /etc a container owns: made per container (or by the image), never the host's.
OWN_ETC = frozenset(
    {
        "hosts", "hostname", "resolv.conf", "passwd", "group", "shadow", "gshadow", "subuid", "subgid",
        "machine-id", "mtab", "ld.so.preload", "sudoers", "sudoers.d", "ssh", "docker", "kubernetes",
    }
)  # fmt: skip
INSIDE_LABKIT = "/.labkit"  # where labkit's own helpers appear inside (the network shim)


@dataclass(frozen=True)
class Mount:
    """One host path shown at ``target`` inside the view."""

    source: Path
    target: str  # absolute path inside
    writable: bool = False


@dataclass(frozen=True)
class View:
    """A process's filesystem: ``root`` as ``/``, then ``mounts`` in order, starting in ``cwd``."""

    root: Path
    cwd: str = "/"
    mounts: tuple[Mount, ...] = ()
    hostname: str | None = None
    links: tuple[tuple[str, str], ...] = field(default=())  # (target inside, link text): /bin -> usr/bin

    def host_path(self, inside: str) -> Path:
        """The host path that ``inside`` shows (the last mount covering it wins)."""
        inside = "/" + inside.strip("/")
        for link, text in self.links:
            if inside == link or inside.startswith(link + "/"):
                inside = (
                    "/"
                    + os.path.normpath(os.path.join(os.path.dirname(link), text)).strip("/")
                    + inside[len(link) :]
                )
        for mount in reversed(self.mounts):
            target = mount.target.rstrip("/") or "/"
            if inside == target or inside.startswith(target + "/"):
                return mount.source / inside[len(target) :].lstrip("/")
        return self.root / inside.lstrip("/")

    def which(self, program: str, path: str) -> str | None:
        """The inside path of ``program`` as ``execvp`` would find it with ``PATH``, or None."""
        if "/" in program:
            inside = program if program.startswith("/") else os.path.join(self.cwd, program)
            return inside if _executable(self.host_path(inside)) else None
        for directory in path.split(":"):
            if directory.startswith("/"):
                candidate = f"{directory.rstrip('/')}/{program}"
                if _executable(self.host_path(candidate)):
                    return candidate
        return None

    def stubs(self) -> list[Path]:
        """Create the mount points that are missing in ``root``; the ones it created, deepest
        last (give them to :meth:`remove_stubs`)."""
        made: list[Path] = []
        for mount in self.mounts:
            point = self.root / mount.target.lstrip("/")
            if os.path.lexists(point):
                continue
            missing = []
            parent = point.parent
            while not os.path.lexists(parent) and parent != self.root:
                missing.append(parent)
                parent = parent.parent
            for directory in reversed(missing):
                directory.mkdir()
                made.append(directory)
            if mount.source.is_dir():
                point.mkdir()
            else:
                point.touch()
            made.append(point)
        for link, text in self.links:
            point = self.root / link.lstrip("/")
            if not os.path.lexists(point):
                point.symlink_to(text)
                made.append(point)
        return made

    @staticmethod
    def remove_stubs(made: Iterable[Path]) -> None:
        """Remove the mount points :meth:`stubs` made, if they are still empty."""
        for point in reversed(list(made)):
            try:
                if point.is_symlink() or (point.is_file() and point.stat().st_size == 0):
                    point.unlink()
                elif point.is_dir():
                    point.rmdir()
            except OSError:
                pass


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def interpreter_prefixes() -> list[Path]:
    """Prefixes of the interpreters images borrow that live outside the system directories:
    this Python's installation (a pyenv or conda one), and Node's when it is elsewhere."""
    found: list[Path] = []
    for candidate in (sys.base_prefix, _node_prefix()):
        if not candidate:
            continue
        real = Path(os.path.realpath(candidate))
        top = real.parts[1] if len(real.parts) > 1 else ""
        if top not in SYSTEM_DIRS and real not in found and real != Path("/"):
            found.append(real)
    return found


def _node_prefix() -> str:
    node = shutil.which("node")
    if node is None:
        return ""
    return str(Path(os.path.realpath(node)).parent.parent)


def borrowed(
    image_root: Path | None, extra: Iterable[Path] = ()
) -> tuple[list[Mount], list[tuple[str, str]]]:
    """The host paths a view borrows read-only, given the image's own files in ``image_root``,
    and the symlinks (such as ``/bin -> usr/bin``) it copies from the host."""
    mounts: list[Mount] = []
    links: list[tuple[str, str]] = []
    for name in SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            links.append((f"/{name}", os.readlink(host)))
        elif host.is_dir():
            mounts.append(Mount(host, f"/{name}"))
    for entry in sorted(os.listdir("/etc")):
        if entry in OWN_ETC or (image_root is not None and os.path.lexists(image_root / "etc" / entry)):
            continue
        path = Path("/etc") / entry
        if os.access(path, os.R_OK):
            mounts.append(Mount(path, f"/etc/{entry}"))
    for prefix in [*interpreter_prefixes(), *extra]:
        mounts.append(Mount(prefix, str(prefix)))
    if image_root is not None:
        mounts.extend(_own_over_borrowed(image_root, links))
    return mounts, links


def _own_over_borrowed(image_root: Path, links: list[tuple[str, str]]) -> list[Mount]:
    """The image's own directories below a borrowed one (``/usr/local`` of a Python image),
    mounted over the host's, writable (they are the container's own copy). Only directories
    the host has too can be mounted over: a read-only host directory takes no new mount point."""
    linked = {link.lstrip("/") for link, _ in links}
    own: list[Mount] = []
    for name in SYSTEM_DIRS:
        if name in linked:
            continue
        top = image_root / name
        if not top.is_dir() or top.is_symlink():
            continue
        for entry in sorted(os.listdir(top)):
            if (Path("/") / name / entry).is_dir() and (top / entry).is_dir():
                own.append(Mount(top / entry, f"/{name}/{entry}", writable=True))
    return own
