"""The bases a ``FROM`` can name when labkit builds without a daemon: what this host can supply.

- ``python:*``: a Python environment of the image's own (``python -m venv --without-pip`` at
  ``/usr/local`` in the image), made from the Python that runs labkit; ``RUN pip install``
  installs into it alone.
- ``node:*``: the host's ``node`` (and ``npm``), when it has one.
- ``busybox``, ``alpine``, ``debian``, ``ubuntu``: a POSIX shell, the host's ``/bin/sh``.
- ``scratch``: nothing at all.
- any image labkit built before (``labkit image ls``).

The version in a tag is recorded; when it differs from what the host has, the build warns.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labkit.errors import BaseImageError
from labkit.shared.imageref import requested_version, split_reference, version_matches
from labkit.shared.imagestore import DEFAULT_PATH, DiskImages, StoredImage

CATALOG_VERSION = "1"  # part of every base's cache key: bump when what a base holds changes
SHELL_BASES = {"busybox": ("sh",), "alpine": ("/bin/sh",), "debian": ("bash",), "ubuntu": ("bash",)}
SUPPORTED = "python:*, node:* (uses this machine's node), busybox, alpine, debian, ubuntu, scratch"
VENV_DIR = "usr/local"


@dataclass(frozen=True)
class Base:
    """A base image as the builder starts from it."""

    reference: str  # as the FROM line names it, after substitution
    key: str  # the cache key that every layer built on it chains from
    describe: str  # what it stands for, e.g. "Python 3.11.7 (this machine's), own environment"
    config: dict[str, object]  # Docker's config section: Env, Cmd, WorkingDir, ...
    create: Callable[[Path], None] | None = None  # makes its files in an empty root
    image: StoredImage | None = None  # a base labkit built before
    has_shell: bool = True
    python: bool = False  # has an environment that ``RUN pip install`` installs into
    warnings: tuple[str, ...] = field(default=())


def resolve(reference: str, store: DiskImages, line: int) -> Base:
    """The base a FROM reference names; raises :class:`BaseImageError` for one the host cannot
    supply, listing the supported ones and the nearest name."""
    built = store.find(reference)
    if built is not None:
        return _built(reference, built)
    repository, tag = split_reference(reference)
    if repository == "scratch":
        return Base(reference, _key("scratch"), "an empty image", {}, has_shell=False)
    if repository == "python":
        return _python(reference, tag, line)
    if repository == "node":
        return _node(reference, tag, line)
    if repository in SHELL_BASES:
        return _shell(reference, repository, line)
    raise _unknown(reference, repository, store, line)


def _key(*parts: str) -> str:
    return hashlib.sha256("\0".join(("base", CATALOG_VERSION, *parts)).encode()).hexdigest()


def _built(reference: str, image: StoredImage) -> Base:
    config = dict(image.config.get("config") or {})
    warnings = ()
    if config.get("OnBuild"):
        warnings = (f"FROM {reference}: its ONBUILD triggers are not run by labkit's builder",)
    return Base(
        reference,
        "image:" + image.id,
        f"an image labkit built ({image.id[7:19]})",
        config,
        image=image,
        has_shell=bool(image.config.get("labkit", {}).get("shell", True)),
        python=bool(image.config.get("labkit", {}).get("python", False)),
        warnings=warnings,
    )


def _mismatch(reference: str, wanted: str, have: str, what: str, line: int) -> tuple[str, ...]:
    if version_matches(wanted, have):
        return ()
    return (
        f"line {line}: FROM {reference} asks for {what} {wanted}, but this machine has {what} {have}: "
        f"the image uses {have}",
    )


def _python(reference: str, tag: str, line: int) -> Base:
    have = platform.python_version()
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "PYTHON_VERSION": have}
    return Base(
        reference,
        _key("python", sys.executable, have),
        f"Python {have} (this machine's), in an environment of the image's own",
        {"Env": [f"{k}={v}" for k, v in env.items()], "Cmd": ["python3"]},
        create=_make_venv,
        python=True,
        warnings=_mismatch(reference, requested_version(tag), have, "Python", line),
    )


def _make_venv(root: Path) -> None:
    """``python -m venv --without-pip`` at /usr/local of the image (about 0.05 s)."""
    venv.EnvBuilder(symlinks=os.name != "nt", with_pip=False).create(root / VENV_DIR)


def _node(reference: str, tag: str, line: int) -> Base:
    node = shutil.which("node")
    if node is None:
        raise BaseImageError(
            f"Dockerfile line {line}: FROM {reference} needs Node.js on this machine, and there is none",
            "install Node.js (node on PATH), or build with the Docker Engine",
            line=line,
        )
    real = os.path.realpath(node)
    have = subprocess.run([real, "--version"], capture_output=True, text=True).stdout.strip().lstrip("v")
    tools = {n: os.path.realpath(p) for n in ("node", "npm", "npx") if (p := shutil.which(n))}

    def create(root: Path) -> None:
        bin_dir = root / VENV_DIR / "bin"
        bin_dir.mkdir(parents=True)
        for name, target in tools.items():
            (bin_dir / name).symlink_to(target)

    return Base(
        reference,
        _key("node", real, have),
        f"Node.js {have} (this machine's)",
        {"Env": [f"PATH={DEFAULT_PATH}", f"NODE_VERSION={have}"], "Cmd": ["node"]},
        create=create,
        warnings=_mismatch(reference, requested_version(tag), have, "Node.js", line),
    )


def _shell(reference: str, repository: str, line: int) -> Base:
    note = (
        f"line {line}: FROM {reference} stands for a POSIX shell: this machine's /bin/sh and programs "
        f"({repository}'s own programs and package manager are not there)"
    )
    return Base(
        reference,
        _key("shell", repository),
        "a POSIX shell (this machine's /bin/sh)",
        {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": list(SHELL_BASES[repository])},
        warnings=(note,),
    )


def _unknown(reference: str, repository: str, store: DiskImages, line: int) -> BaseImageError:
    built = sorted({t.rsplit(":", 1)[0] for i in store.list() for t in i.tags})
    names = ["python", "node", *SHELL_BASES, "scratch", *built]
    close = difflib.get_close_matches(repository, names, n=1, cutoff=0.5)
    guess = f"did you mean {close[0]}? " if close else ""
    mine = f", and images you built: {', '.join(built)}" if built else ", and images you built"
    return BaseImageError(
        f"Dockerfile line {line}: FROM {reference}: labkit's builder cannot supply the base image "
        f"{repository} (it pulls nothing; bases come from this machine)",
        f"{guess}supported bases: {SUPPORTED}{mine}; or build with the Docker Engine",
        line=line,
    )
