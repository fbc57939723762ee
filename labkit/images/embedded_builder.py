"""labkit's own image builder: no daemon, no root, images straight into the kubelet's store.

:func:`build` parses the Dockerfile (:mod:`~labkit.images.dockerfile`), checks the context
(:mod:`~labkit.images.build_context`), and runs each needed stage step by step
(:mod:`~labkit.images.build_driver`). Every step has a cache key made of its parent's key, the
instruction (after ARG/ENV substitution) and, for COPY and ADD, a hash of the files it copies
(:mod:`~labkit.images.cache_keys`); a step whose key is in the cache is not run (``CACHED``),
and a change gives a new key from that step on. Steps run in a temporary directory under the
store and the image is moved into place with one rename, so a failed build leaves no
half-written image. An unchanged rebuild touches no file: the image it would make is already
there, and only the tag is written.

RUN runs the image's shell (this machine's ``/bin/sh``) in the image's root directory with
the image's environment, its bin directories first on ``PATH`` (:mod:`~labkit.images.runstep`).
Instructions that cannot be honoured this way (a distribution's package manager, ``ADD`` from
a URL, ``RUN --mount``) are errors or warnings that say so.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

from labkit.errors import BuildError, UsageError
from labkit.images.build_context import MAX_CONTEXT_BYTES, BuildContext
from labkit.images.build_driver import Builder
from labkit.images.build_state import DEFAULT_SHELL, StageState, Step
from labkit.images.copy_steps import COPY_FLAGS
from labkit.images.dockerfile import parse
from labkit.images.models import BuildResult, ProgressCallback
from labkit.images.runstep import OUTPUT_TAIL, RUN_FLAGS_IGNORED
from labkit.shared.imagestore import DiskImages

__all__ = [
    "COPY_FLAGS",
    "DEFAULT_SHELL",
    "OUTPUT_TAIL",
    "RUN_FLAGS_IGNORED",
    "TAG",
    "StageState",
    "Step",
    "build",
]

TAG = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?$")
"""What a tag given to the embedded builder (or ``labkit image tag``) must look like."""


def build(
    context: Path | str,
    tag: str | None = None,
    *,
    dockerfile: Path | str | None = None,
    dockerfile_text: str | None = None,
    build_args: dict[str, str] | None = None,
    target: str | None = None,
    no_cache: bool = False,
    progress: ProgressCallback | None = None,
    home: Path | None = None,
    context_limit: int = MAX_CONTEXT_BYTES,
) -> BuildResult:
    """Build an image from a Dockerfile (``dockerfile`` path, default ``CONTEXT/Dockerfile``,
    or its text) and a context directory into the store; tag it ``tag``. Raises
    :class:`~labkit.errors.BuildError` naming the Dockerfile line."""
    started = time.monotonic()
    if tag is not None and not TAG.match(tag):
        raise UsageError(
            f"invalid tag {tag!r}",
            "use lower-case letters, digits and . _ - / for the name, and an optional :version, "
            "e.g. posts:1.0",
        )
    context = Path(context)
    text = dockerfile_text if dockerfile_text is not None else _read_dockerfile(context, dockerfile)
    parsed = parse(text)
    builder = Builder(DiskImages(home), parsed, build_args or {}, no_cache, progress)
    ctx = BuildContext(context, context_limit)
    result = builder.run(ctx, target, tag)
    return dataclasses.replace(result, seconds=time.monotonic() - started)


def _read_dockerfile(context: Path, dockerfile: Path | str | None) -> str:
    """The text of the Dockerfile at ``dockerfile`` (default ``CONTEXT/Dockerfile``)."""
    path = Path(dockerfile) if dockerfile is not None else context / "Dockerfile"
    try:
        return path.read_text()
    except FileNotFoundError:
        raise BuildError(
            f"no Dockerfile at {path}",
            "write one there, or name it with -f path/to/Dockerfile",
        ) from None
    except OSError as e:
        raise BuildError(f"cannot read the Dockerfile {path}: {e.strerror}", "check the path") from None
