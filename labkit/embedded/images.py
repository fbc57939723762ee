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

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from labkit.shared.imageref import split_reference
from labkit.shared.imagestore import DEFAULT_PATH, ImageConfig

ECHO_SERVER = Path(__file__).with_name("echo_server.py")
ECHO_NAMES = ("labkit/echo", "echo")
BUSYBOX_NAMES = ("busybox", "alpine", "debian", "ubuntu")
BUILTIN_HINT = (
    "labkit runs images it built (%%dockerfile / labkit build) or the built-in ones: "
    "labkit/echo (alias echo), busybox (aliases alpine, debian, ubuntu)"
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
    """The images every cluster has: ``labkit/echo`` and ``busybox``, any tag."""

    def resolve(self, image: str) -> Image | None:
        """The built-in image a reference names, or None."""
        repository, tag = split_reference(image)
        if repository in ECHO_NAMES:
            return _echo(image, tag)
        if repository in BUSYBOX_NAMES:
            return _busybox(image, repository, tag)
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


def builtin_images() -> ImageStore:
    """A store holding the built-in images."""
    return BuiltinImages()
