"""Images as the kubelet sees them: a store that resolves references, and the built-in images.

An :class:`Image` says what a container started from it gets (entrypoint, cmd, env, working
directory, exposed ports) and how the process runtime runs it: programs are looked up in the
image's root directory (when it has one) before the host's ``PATH``, and ``commands`` maps a
program name to the host command that stands for it (the echo server is the daemon's Python
running :mod:`labkit.embedded.echo_server`).

Images labkit built (:mod:`labkit.embedded.imagesource`) come first; two built-in images let
pods run without building anything: ``labkit/echo`` (alias ``echo``),
a small HTTP server in the spirit of podinfo, and ``busybox`` (aliases ``alpine``, ``debian``,
``ubuntu``), whose programs are the host's ``/bin/sh`` and friends. Any tag resolves.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from labkit.embedded import nodewheel
from labkit.shared.imageref import requested_version, split_reference, version_matches
from labkit.shared.imagestore import DEFAULT_PATH, ImageConfig

ECHO_SERVER = Path(__file__).with_name("echo_server.py")
ECHO_NAMES = ("labkit/echo", "echo")
BUSYBOX_NAMES = ("busybox", "alpine", "debian", "ubuntu")
BUILTIN_HINT = (
    "labkit runs images it built (%%dockerfile / labkit build) and the built-in ones: "
    "labkit/echo (alias echo), busybox (aliases alpine, debian, ubuntu), python:* and node:* "
    "(this machine's interpreters)"
)


@dataclass(frozen=True)
class Image:
    """A runnable image: its name, content ID, config and how the process runtime runs it."""

    name: str  # the reference it was resolved from, e.g. "labkit/echo:v2"
    id: str  # "sha256:<64 hex>"
    config: ImageConfig
    root: Path | None = None  # the image's filesystem, if it has one
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)  # program -> host command
    size: int = 0  # bytes, as the Pulled event reports it
    local: bool = False  # built on this machine: no registry has it, so it cannot be pulled
    note: str = ""  # how this machine supplies it, where that differs from what its tag asks

    @property
    def repository(self) -> str:
        """The name without tag or digest (``labkit/echo``)."""
        return split_reference(self.name)[0]


class ImageStore(Protocol):
    """Where the kubelet gets images from."""

    def resolve(self, image: str) -> Image | None:
        """The image a reference names, or None when it is not present."""
        ...


def image_id(*parts: str) -> str:
    """A stable content ID for an image made of ``parts``."""
    return "sha256:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()


class BuiltinImages:
    """The images every cluster has: ``labkit/echo``, ``busybox`` (and the shells that stand
    for ``alpine``, ``debian``, ``ubuntu``), ``python`` and ``node``, any tag. ``python`` and
    ``node`` images are made once under ``cache`` (an environment of their own at
    ``/usr/local``, as the official images have one), from this machine's interpreters."""

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache

    def pull(self, image: str) -> Image | None:
        """Fetch what a built-in image needs and this machine lacks (a Node.js major, from
        the package registry); the image, or None when it is not one that can be pulled.
        When the fetch fails, ``node:*`` falls back to this machine's Node.js with a note."""
        repository, tag = split_reference(image)
        if repository != "node" or self.cache is None:
            return None
        major = _major(tag)
        if major is None:
            return None
        try:
            nodewheel.pull(self.cache, major)
        except nodewheel.NodeWheelError as e:
            fallback = _host_node(image, tag, self.cache)
            if fallback is None:
                return None
            return dataclasses.replace(fallback, note=f"{fallback.note} ({e})" if fallback.note else str(e))
        return stock_image(image, repository, tag, self.cache)

    def resolve(self, image: str) -> Image | None:
        """The built-in image a reference names, or None."""
        repository, tag = split_reference(image)
        if repository in ECHO_NAMES:
            return _echo(image, tag)
        if repository in BUSYBOX_NAMES:
            return _busybox(image, repository, tag)
        if repository in ("python", "node") and self.cache is not None:
            return stock_image(image, repository, tag, self.cache)
        return None


def _echo(reference: str, tag: str) -> Image:
    config = ImageConfig(
        entrypoint=("echo-server",),
        env=(("PATH", DEFAULT_PATH), ("VERSION", tag)),
        exposed_ports=(8080,),
    )
    return Image(
        reference,
        image_id("labkit/echo", tag),
        config,
        commands={"echo-server": (sys.executable, "-u", str(ECHO_SERVER))},
        size=ECHO_SERVER.stat().st_size,
    )


def _busybox(reference: str, repository: str, tag: str) -> Image:
    config = ImageConfig(cmd=("sh",), env=(("PATH", DEFAULT_PATH),))
    shell = Path("/bin/sh")
    size = shell.stat().st_size if shell.exists() else 0
    return Image(reference, image_id(repository, tag), config, size=size)


def builtin_images(cache: Path | None = None) -> ImageStore:
    """A store holding the built-in images (``python`` and ``node`` need a ``cache``)."""
    return BuiltinImages(cache)


def stock_image(reference: str, repository: str, tag: str, cache: Path) -> Image | None:
    """``python:*`` or ``node:*`` as this machine can supply it; None when it cannot (no node)."""
    if repository == "python":
        version = platform.python_version()
        root = _made(cache / f"python-{version}", _python_root)
        env = (("PATH", DEFAULT_PATH), ("LANG", "C.UTF-8"), ("PYTHON_VERSION", version))
        config = ImageConfig(cmd=("python3",), env=env)
        note = version_note(reference, tag, "Python", version)
    else:
        major = _major(tag)
        node = shutil.which("node")
        have = _node_version(os.path.realpath(node)) if node else ""
        if major is not None and have.split(".")[0] != major:
            # a major this machine lacks: present once pulled from the package registry
            pulled = nodewheel.installed(cache, major)
            if pulled is None:
                return None
            config = ImageConfig(cmd=("node",), env=(("PATH", DEFAULT_PATH), ("NODE_VERSION", major)))
            return Image(
                reference, image_id(repository, tag, str(pulled)), config, root=pulled, size=_size(pulled)
            )
        return _host_node(reference, tag, cache)
    image = Image(reference, image_id(repository, tag, str(root)), config, root=root, size=_size(root))
    return dataclasses.replace(image, note=note) if note else image


def _host_node(reference: str, tag: str, cache: Path) -> Image | None:
    """``node:*`` from this machine's ``node`` (with a note when the tag asks for another major)."""
    node = shutil.which("node")
    if node is None:
        return None
    real = os.path.realpath(node)
    root = _made(cache / f"node-{hashlib.sha256(real.encode()).hexdigest()[:12]}", _node_root(real))
    config = ImageConfig(cmd=("node",), env=(("PATH", DEFAULT_PATH),))
    note = version_note(reference, tag, "Node.js", _node_version(real))
    image = Image(reference, image_id("node", tag, str(root)), config, root=root, size=_size(root))
    return dataclasses.replace(image, note=note) if note else image


def _major(tag: str) -> str | None:
    """The major version a tag asks for (``22`` of ``22.4-alpine``), or None (``lts``, ``latest``)."""
    return requested_version(tag).split(".")[0] or None


def version_note(reference: str, tag: str, language: str, have: str) -> str:
    """A warning when the tag asks for a version (``3.12-slim``, ``20-alpine``) that the
    interpreter this machine has does not match; empty when it matches or asks for none."""
    wanted = requested_version(tag)
    if not have or version_matches(wanted, have):
        return ""
    return (
        f"{reference} asks for {language} {wanted}, and this machine has {language} {have}: "
        f"the container runs {have} (install {language} {wanted} on this machine, or change the tag)"
    )


@functools.cache
def _node_version(node: str) -> str:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.strip().lstrip("v")


def _made(root: Path, make: Callable[[Path], None]) -> Path:
    """``root``, made by ``make`` once (in a temporary directory, then renamed into place)."""
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    try:
        make(tmp)
        tmp.chmod(0o755)
        os.rename(tmp, root)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not root.is_dir():
            raise
    return root


def _python_root(root: Path) -> None:
    venv.EnvBuilder(symlinks=True, with_pip=False).create(root / "usr" / "local")


def _node_root(node: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        bin_dir = root / "usr" / "local" / "bin"
        bin_dir.mkdir(parents=True)
        for name in ("node", "npm", "npx"):
            found = node if name == "node" else shutil.which(name)
            if found:
                (bin_dir / name).symlink_to(os.path.realpath(found))

    return make


@functools.cache
def _size(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
