"""The build context the Docker Engine builder sends: a directory or files by name, as a tar
with the Dockerfile added, as ``docker build -f-`` sends it.

A context given as files (what a notebook wrote) is written to a temporary directory first;
their names must stay inside it. ``.dockerignore`` is sent along and honoured by the engine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import IO

import docker.utils

from labkit.errors import UsageError

Context = str | os.PathLike[str] | Mapping[str, str | bytes] | None
"""A build context: a directory, files by relative name (what a notebook wrote), or nothing."""


@contextlib.contextmanager
def context_root(context: Context) -> Iterator[Path]:
    """The context as a directory: the one given, or a temporary one holding the given files."""
    if context is not None and not isinstance(context, Mapping):
        root = Path(context)
        if not root.is_dir():
            raise UsageError(
                f"context {str(root)!r} is not a directory",
                hint="Give the directory whose files COPY and ADD read, or a dict of file name → content.",
            )
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="labkit-context-") as tmp:
        for name, content in (context or {}).items():
            path = Path(tmp, context_name(name))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        yield Path(tmp)


def context_name(name: str) -> PurePosixPath:
    """A context file's name, refused when it is empty, absolute or leaves the context."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise UsageError(
            f"context file name {name!r} must be a relative path inside the context",
            hint="Use names like 'app.py' or 'src/app.py'.",
        )
    return path


@contextlib.contextmanager
def context_tar(root: Path, dockerfile: str) -> Iterator[tuple[IO[bytes], str]]:
    """The context as a tar with the Dockerfile text added under a fresh name, as `docker build -f-`.

    Both that name and .dockerignore are listed in the .dockerignore sent along, so the engine
    reads them and then drops them from the context: `COPY . .` copies neither.
    """
    name = f".labkit.Dockerfile.{secrets.token_hex(8)}"
    ignore = root / ".dockerignore"
    patterns = ignore_patterns(ignore.read_text()) if ignore.is_file() else []
    try:
        archive = docker.utils.tar(
            str(root), exclude=[*patterns, ".dockerignore"], dockerfile=(name, dockerfile)
        )
    except OSError as err:
        raise UsageError(
            f"cannot read the build context {str(root)!r}: {err}",
            hint="Every file in the context must be readable; exclude the others in .dockerignore.",
        ) from err
    try:
        yield archive, name
    finally:
        archive.close()


def ignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file (comments and blank lines dropped)."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
