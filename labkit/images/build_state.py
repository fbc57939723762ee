"""The state of one embedded build, shared by the driver and the instruction handlers.

:class:`Step` is what a handler gives for an instruction (its cache-key material and what it
does to the root), :class:`StageState` a stage while it is built, and :class:`BuildState` the
build: its Dockerfile, store and layer cache, build args, the stages built so far, progress
events, warnings and ``$VAR`` substitution that names the Dockerfile line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from labkit.errors import BuildError
from labkit.images import cache_keys, catalog
from labkit.images.build_context import BuildContext
from labkit.images.dockerfile import Dockerfile, Instruction, Stage
from labkit.images.layers import LayerCache, Snapshot
from labkit.images.models import BuildStep, HistoryEntry, ProgressCallback, StepState
from labkit.images.substitution import SubstitutionError, expand, words
from labkit.shared.imagestore import DiskImages

DEFAULT_SHELL = ["/bin/sh", "-c"]


@dataclass
class Step:
    """What preparing an instruction yields: its cache-key material and its file action."""

    material: str
    action: Callable[[], set[str]] | None = None  # changes the root; returns paths it wrote
    relocatable: bool = False  # files it writes may hold the root's path


@dataclass
class StageState:
    """A stage while it is built."""

    stage: Stage
    dir: Path
    key: str = ""
    layers: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    base: catalog.Base | None = None
    materialized: bool = False
    snap: Snapshot | None = None
    relocated: set[str] = field(default_factory=set)
    cmd_set: bool = False

    @property
    def root(self) -> Path:
        """The stage's filesystem while it is built."""
        return self.dir / "rootfs"

    @property
    def workdir(self) -> str:
        """The current WORKDIR (absolute)."""
        return str(self.config.get("WorkingDir") or "/")

    @property
    def shell(self) -> list[str]:
        """The shell of shell-form RUN, CMD and ENTRYPOINT: the last SHELL, or ``/bin/sh -c``."""
        return list(self.config.get("Shell") or DEFAULT_SHELL)  # type: ignore[call-overload]

    def subst(self) -> dict[str, str]:
        """What ``$VAR`` means in this stage now: ARG values, then ENV."""
        return {**self.args, **self.env}


Handler = Callable[["BuildState", StageState, Instruction], Step]
"""Prepares one instruction of a stage: updates the stage's config and says what the step does."""


def now() -> str:
    """The current time in RFC 3339 with microseconds, as image configs record it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BuildState:
    """One build: its stages, counters and warnings."""

    ctx: BuildContext  # set when the build runs, after the Dockerfile's global ARGs are read

    def __init__(
        self,
        store: DiskImages,
        dockerfile: Dockerfile,
        build_args: dict[str, str],
        no_cache: bool,
        progress: ProgressCallback | None,
    ) -> None:
        self.store = store
        self.cache = LayerCache(store)
        self.df = dockerfile
        self.build_args = build_args
        self.salt = cache_keys.salt(no_cache)
        self.progress = progress
        self.warnings: list[str] = list(dockerfile.warnings)
        self.consumed: set[str] = set()
        self.number = 0
        self.total = 0
        self.hits = 0
        self.global_args = self._global_args()
        self.states: dict[int, StageState] = {}

    def emit(
        self, ins: Instruction, stage: str, state: StepState, output: str = "", seconds: float = 0.0
    ) -> None:
        """Report progress."""
        if self.progress is not None:
            event = BuildStep(self.number, self.total, ins.original, state, stage, ins.line, output, seconds)
            self.progress(event)

    def warn(self, ins: Instruction, text: str) -> None:
        """Record a warning about an instruction."""
        self.warnings.append(f"line {ins.line}: {text}")

    def expand(self, text: str, env: dict[str, str], ins: Instruction) -> str:
        """``text`` with ``$VAR`` substituted, as one word; a bad ``${...}`` names the line."""
        try:
            return expand(text, env, self.df.escape)
        except SubstitutionError as e:
            raise BuildError(
                f"Dockerfile line {ins.line}: {e}", "fix the ${...} expression", line=ins.line
            ) from None

    def words(self, text: str, env: dict[str, str], ins: Instruction) -> list[str]:
        """``text`` split into words with ``$VAR`` substituted; bad quoting names the line."""
        try:
            return words(text, env, self.df.escape)
        except SubstitutionError as e:
            raise BuildError(
                f"Dockerfile line {ins.line}: {e}", "fix the quoting or ${...}", line=ins.line
            ) from None

    def materialize(self, st: StageState) -> None:
        """Make the stage's files real: its layers, applied in order."""
        if st.materialized:
            return
        st.root.mkdir(exist_ok=True)
        for key in st.layers:
            info = self.cache.find(key)
            if info is None:
                raise BuildError(
                    f"the layer cache lost a layer of stage {st.stage.label}",
                    "build again with --no-cache",
                )
            self.cache.apply(info, st.root)
            st.relocated |= set(info.relocate)
        st.materialized = True
        st.snap = None

    def _global_args(self) -> dict[str, str]:
        """The values of the ARGs before the first FROM (build args first, then defaults)."""
        values: dict[str, str] = {}
        for ins in self.df.global_args:
            for word in self.words(ins.value, values, ins):
                name, eq, default = word.partition("=")
                if name in self.build_args:
                    values[name] = self.build_args[name]
                    self.consumed.add(name)
                elif eq:
                    values[name] = default
        return values
