"""What both image builders (the Docker Engine's and labkit's embedded one) report.

A build streams :class:`BuildStep` events while it runs and returns a :class:`BuildResult`.
Both are plain frozen dataclasses, so widgets, magics and tests can use them without knowing
which builder made them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

StepState = Literal["start", "cached", "output", "done", "error"]


@dataclass(frozen=True)
class BuildStep:
    """One progress event of a build.

    ``state`` is ``start`` when a step begins, ``cached`` when its layer came from the cache
    (no ``start`` comes before it), ``output`` for a chunk of what a RUN step prints (in
    ``output``), ``done`` when it finished (``seconds`` it took) and ``error`` when it failed.
    """

    number: int  # 1-based, counted over the whole build (all stages)
    total: int  # how many steps the build has
    instruction: str  # as written, e.g. "RUN pip install -r requirements.txt"
    state: StepState
    stage: str = ""  # the stage's name (``AS name``) or its index, "0", "1", ...
    line: int = 0  # the Dockerfile line the instruction starts on (0 when unknown)
    output: str = ""
    seconds: float = 0.0


ProgressCallback = Callable[[BuildStep], None]


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an image's history (``docker history``): newest last."""

    created_by: str  # the instruction, e.g. "COPY server.py ." or "ENV PORT=8080"
    created: str = ""  # RFC 3339
    size: int = 0  # bytes the step added
    empty_layer: bool = False  # the step only changed the config


@dataclass(frozen=True)
class BuildResult:
    """A finished build: the image and how it was made."""

    tag: str  # the reference it was tagged with, e.g. "posts:1.0"
    id: str  # "sha256:<64 hex>"
    size: int  # bytes
    cache_hits: int  # steps whose layer came from the cache
    steps: int  # steps in the stages that were built
    history: tuple[HistoryEntry, ...] = ()
    warnings: tuple[str, ...] = ()
    builder: str = ""  # "embedded" or "docker"
    seconds: float = 0.0  # wall time of the build

    @property
    def all_cached(self) -> bool:
        """Every step came from the cache (an unchanged rebuild)."""
        return self.steps > 0 and self.cache_hits == self.steps


def human_size(n: int, separator: str = " ") -> str:
    """A size in decimal units as Docker prints it: ``950 B``, ``12.3 MB`` (``docker image ls``
    writes no space: ``separator=""``)."""
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f}{separator}{unit}" if unit == "B" else f"{value:.1f}{separator}{unit}"
        value /= 1000
    return f"{value:.1f}{separator}GB"
