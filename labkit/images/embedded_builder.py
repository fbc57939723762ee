"""labkit's own image builder: no daemon, no root, images straight into the kubelet's store.

:func:`build` parses the Dockerfile, checks the context, and runs each needed stage step by
step. Every step has a cache key made of its parent's key, the instruction (after ARG/ENV
substitution) and, for COPY and ADD, a hash of the files it copies; a step whose key is in
the cache is not run (``CACHED``), and a change gives a new key from that step on. Steps run
in a temporary directory under the store and the image is moved into place with one rename,
so a failed build leaves no half-written image. An unchanged rebuild touches no file: the
image it would make is already there, and only the tag is written.

RUN runs the image's shell (this machine's ``/bin/sh``) in the image's root directory with
the image's environment, its bin directories first on ``PATH``. Instructions that cannot be
honoured this way (a distribution's package manager, ``ADD`` from a URL, ``RUN --mount``)
are errors or warnings that say so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import posixpath
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from labkit.errors import BuildError, UsageError
from labkit.images import catalog
from labkit.images.context import MAX_CONTEXT_BYTES, BuildContext
from labkit.images.dockerfile import Dockerfile, Instruction, Stage, SubstitutionError, expand, parse, words
from labkit.images.layers import LayerCache, LayerInfo, Snapshot, changes, relocate, snapshot
from labkit.images.models import BuildResult, BuildStep, HistoryEntry, ProgressCallback, StepState
from labkit.images.runstep import run_isolation, run_view
from labkit.images.steps import (
    SCRIPT_RUNNER,
    architecture,
    base_creator,
    check_many,
    chmod_flag,
    duration_ns,
    extract,
    is_archive,
    place,
    refuse_package_managers,
    target_path,
    tools_dir,
)
from labkit.sandbox.isolation import own_for
from labkit.shared.imagestore import DiskImages

DEFAULT_SHELL = ["/bin/sh", "-c"]
RUN_FLAGS_IGNORED = {"mount", "network", "security"}
COPY_FLAGS = {"from", "chown", "chmod", "link"}
TAG = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?$")
OUTPUT_TAIL = 30  # lines of a failed RUN's output in the error


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

    def subst(self) -> dict[str, str]:
        """What ``$VAR`` means in this stage now: ARG values, then ENV."""
        return {**self.args, **self.env}


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
    builder = _Builder(DiskImages(home), parsed, build_args or {}, no_cache, progress)
    ctx = BuildContext(context, context_limit)
    result = builder.run(ctx, target, tag)
    return dataclasses.replace(result, seconds=time.monotonic() - started)


def _read_dockerfile(context: Path, dockerfile: Path | str | None) -> str:
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


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class _Builder:
    """One build: its stages, counters and warnings."""

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
        self.salt = os.urandom(8).hex() if no_cache else ""
        self.progress = progress
        self.warnings: list[str] = list(dockerfile.warnings)
        self.consumed: set[str] = set()
        self.number = 0
        self.total = 0
        self.hits = 0
        self.global_args = self._global_args()
        self.states: dict[int, StageState] = {}

    # -- plumbing ----------------------------------------------------------------------------

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

    def _expand(self, text: str, env: dict[str, str], ins: Instruction) -> str:
        try:
            return expand(text, env, self.df.escape)
        except SubstitutionError as e:
            raise BuildError(
                f"Dockerfile line {ins.line}: {e}", "fix the ${...} expression", line=ins.line
            ) from None

    def _words(self, text: str, env: dict[str, str], ins: Instruction) -> list[str]:
        try:
            return words(text, env, self.df.escape)
        except SubstitutionError as e:
            raise BuildError(
                f"Dockerfile line {ins.line}: {e}", "fix the quoting or ${...}", line=ins.line
            ) from None

    def _global_args(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for ins in self.df.global_args:
            for word in self._words(ins.value, values, ins):
                name, eq, default = word.partition("=")
                if name in self.build_args:
                    values[name] = self.build_args[name]
                    self.consumed.add(name)
                elif eq:
                    values[name] = default
        return values

    # -- the build -------------------------------------------------------------------------------

    def run(self, ctx: BuildContext, target: str | None, tag: str | None) -> BuildResult:
        """Build the target stage (and the stages it needs); store and tag the image."""
        self.ctx = ctx
        final = self._target(target)
        needed = self._needed(final)
        self.total = sum(1 + len(self.df.stages[i].instructions) for i in needed)
        with self.store.workspace() as space:
            for index in needed:
                state = StageState(self.df.stages[index], space / f"stage-{index}")
                state.dir.mkdir()
                self.states[index] = state
                self._stage(state)
            unused = sorted(set(self.build_args) - self.consumed)
            if unused:
                self.warnings.append(
                    f"build-args {', '.join(unused)} were not consumed (no ARG declares them)"
                )
            image_id, size = self._commit(self.states[final])
        name = self.store.tag(tag, image_id) if tag else ""
        state = self.states[final]
        return BuildResult(
            name,
            image_id,
            size,
            self.hits,
            self.total,
            tuple(state.history),
            tuple(self.warnings),
            "embedded",
        )

    def _target(self, target: str | None) -> int:
        if target is None:
            return len(self.df.stages) - 1
        stage = self.df.stage(target)
        if stage is None:
            names = ", ".join(s.label for s in self.df.stages)
            raise BuildError(f"target stage {target!r} not found", f"the stages are: {names}")
        return stage.index

    def _needed(self, final: int) -> list[int]:
        needed: set[int] = set()
        todo = [final]
        while todo:
            index = todo.pop()
            if index in needed:
                continue
            needed.add(index)
            stage = self.df.stages[index]
            refs = [self._expand(stage.base, self.global_args, stage.from_)]
            refs += [i.flag("from") or "" for i in stage.instructions if i.keyword in ("COPY", "ADD")]
            for ref in refs:
                found = self.df.stage(ref) if ref else None
                if found is not None and found.index < index:
                    todo.append(found.index)
        return sorted(needed)

    def _stage(self, st: StageState) -> None:
        self._from(st)
        for ins in st.stage.instructions:
            self.number += 1
            step = self._prepare(st, ins)
            key = _hash(st.key, step.material)
            info = self.cache.find(key)
            if info is not None:
                self._cached(st, ins, key, info)
            else:
                info = self._execute(st, ins, key, step)
            st.key = key
            st.history.append(HistoryEntry(info.created_by, info.created, info.size, info.empty))

    def _cached(self, st: StageState, ins: Instruction, key: str, info: LayerInfo) -> None:
        self.hits += 1
        self.emit(ins, st.stage.label, "cached")
        if not info.empty:
            st.layers.append(key)
            if st.materialized:
                self.cache.apply(info, st.root)
                st.relocated |= set(info.relocate)
                st.snap = None

    def _execute(self, st: StageState, ins: Instruction, key: str, step: Step) -> LayerInfo:
        self.emit(ins, st.stage.label, "start")
        began = time.monotonic()
        paths: list[str] = []
        deleted: list[str] = []
        if step.action is not None:
            self._materialize(st)
            before = st.snap if st.snap is not None else snapshot(st.root)
            try:
                touched = step.action()
            except BuildError:
                self.emit(ins, st.stage.label, "error", seconds=time.monotonic() - began)
                raise
            st.snap = snapshot(st.root)
            changed, deleted = changes(before, st.snap)
            paths = sorted(set(changed) | {p for p in touched if p in st.snap})
        info = self.cache.commit(key, ins.original, _now(), st.root, paths, deleted, step.relocatable)
        if not info.empty:
            st.layers.append(key)
            st.relocated |= set(info.relocate)
        self.emit(ins, st.stage.label, "done", seconds=time.monotonic() - began)
        return info

    def _materialize(self, st: StageState) -> None:
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

    # -- FROM ----------------------------------------------------------------------------------

    def _from(self, st: StageState) -> None:
        ins = st.stage.from_
        self.number += 1
        for name, value in ins.flags:
            if name == "platform":
                self.warn(ins, f"FROM --platform={value} is ignored: images run on this machine's platform")
            else:
                raise BuildError(
                    f"Dockerfile line {ins.line}: FROM has no flag --{name}", "remove it", line=ins.line
                )
        reference = self._expand(st.stage.base, self.global_args, ins)
        parent = self.df.stage(reference)
        if parent is not None and parent.index in self.states:
            self._from_stage(st, self.states[parent.index])
            self.hits += 1
            self.emit(ins, st.stage.label, "cached")
            return
        base = catalog.resolve(reference, self.store, ins.line)
        st.base = base
        self.warnings.extend(base.warnings)
        config = dict(base.config)
        st.env = dict(str(e).split("=", 1) for e in config.pop("Env", None) or [] if "=" in str(e))  # type: ignore[union-attr]
        st.config = config
        if base.image is not None:
            st.key = _hash("image", base.image.id, self.salt)
            st.layers = list(base.image.layers)
            st.history = [
                HistoryEntry(h.get("created_by", ""), h.get("created", ""), 0, bool(h.get("empty_layer")))
                for h in base.image.config.get("history") or []
            ]
            self.hits += 1
            self.emit(ins, st.stage.label, "cached")
            return
        key = _hash(base.key, self.salt)
        info = self.cache.find(key)
        if info is not None:
            self._cached(st, ins, key, info)
        else:
            info = self._execute(st, ins, key, Step(key, base_creator(base, st.root), relocatable=True))
        st.key = key
        st.history.append(HistoryEntry(f"FROM {reference}", info.created, info.size, info.empty))

    def _from_stage(self, st: StageState, parent: StageState) -> None:
        st.base, st.key, st.layers = parent.base, parent.key, list(parent.layers)
        st.env, st.config, st.history = dict(parent.env), dict(parent.config), list(parent.history)

    # -- instructions ----------------------------------------------------------------------------

    def _prepare(self, st: StageState, ins: Instruction) -> Step:
        handler = getattr(self, "_i_" + ins.keyword.lower())
        return handler(st, ins)  # type: ignore[no-any-return]

    def _pairs(self, st: StageState, ins: Instruction) -> list[tuple[str, str]]:
        found = self._words(ins.value, st.subst(), ins)
        if found and "=" not in found[0]:
            name, _, rest = ins.value.partition(" ")
            return [(name, self._expand(rest.strip(), st.subst(), ins))]
        pairs = []
        for word in found:
            name, eq, value = word.partition("=")
            if not eq or not name:
                raise BuildError(
                    f"Dockerfile line {ins.line}: {ins.keyword} needs NAME=value, not {word!r}",
                    f"write {ins.keyword} NAME=value (quote values with spaces)",
                    line=ins.line,
                )
            pairs.append((name, value))
        return pairs

    def _i_env(self, st: StageState, ins: Instruction) -> Step:
        pairs = self._pairs(st, ins)
        st.env.update(pairs)
        return Step("ENV " + json.dumps(pairs))

    def _i_label(self, st: StageState, ins: Instruction) -> Step:
        pairs = self._pairs(st, ins)
        labels = dict(st.config.get("Labels") or {})  # type: ignore[call-overload]
        labels.update(pairs)
        st.config["Labels"] = labels
        return Step("LABEL " + json.dumps(pairs))

    def _i_maintainer(self, st: StageState, ins: Instruction) -> Step:
        self.warn(ins, "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=...")
        st.config["Author"] = ins.value
        return Step("MAINTAINER " + ins.value)

    def _i_arg(self, st: StageState, ins: Instruction) -> Step:
        declared = []
        for word in self._words(ins.value, st.subst(), ins):
            name, eq, default = word.partition("=")
            if name in self.build_args:
                st.args[name] = self.build_args[name]
                self.consumed.add(name)
            elif eq:
                st.args[name] = default
            elif name in self.global_args:
                st.args[name] = self.global_args[name]
            declared.append(name)
        # the key holds the names only: as with Docker, a changed value misses the cache where it
        # is first used (a RUN sees every ARG in its environment; ENV and others once expanded)
        return Step("ARG " + json.dumps(declared))

    def _i_workdir(self, st: StageState, ins: Instruction) -> Step:
        path = posixpath.normpath(posixpath.join(st.workdir, self._expand(ins.value, st.subst(), ins)))
        st.config["WorkingDir"] = path

        def action() -> set[str]:
            (st.root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
            return set()

        return Step("WORKDIR " + path, action)

    def _shell_form(self, st: StageState, ins: Instruction) -> list[str]:
        if ins.json is not None:
            return list(ins.json)
        shell = list(st.config.get("Shell") or DEFAULT_SHELL)  # type: ignore[call-overload]
        return [*shell, ins.value]

    def _i_cmd(self, st: StageState, ins: Instruction) -> Step:
        st.config["Cmd"] = self._shell_form(st, ins)
        st.cmd_set = True
        return Step("CMD " + json.dumps(st.config["Cmd"]))

    def _i_entrypoint(self, st: StageState, ins: Instruction) -> Step:
        st.config["Entrypoint"] = self._shell_form(st, ins)
        if not st.cmd_set:
            st.config.pop("Cmd", None)  # as Docker: ENTRYPOINT resets the CMD a base image set
        return Step("ENTRYPOINT " + json.dumps(st.config["Entrypoint"]))

    def _i_shell(self, st: StageState, ins: Instruction) -> Step:
        st.config["Shell"] = list(ins.json or ())
        return Step("SHELL " + json.dumps(st.config["Shell"]))

    def _i_expose(self, st: StageState, ins: Instruction) -> Step:
        ports = dict(st.config.get("ExposedPorts") or {})  # type: ignore[call-overload]
        for word in self._words(ins.value, st.subst(), ins):
            number, _, proto = word.partition("/")
            low, _, high = number.partition("-")
            if not low.isdigit() or (high and not high.isdigit()) or proto not in ("", "tcp", "udp", "sctp"):
                raise BuildError(
                    f"Dockerfile line {ins.line}: EXPOSE {word}: not a port",
                    "write EXPOSE 8080 or EXPOSE 8080/tcp (or a range, 8000-8010)",
                    line=ins.line,
                )
            for port in range(int(low), int(high or low) + 1):
                ports[f"{port}/{proto or 'tcp'}"] = {}
        st.config["ExposedPorts"] = ports
        return Step("EXPOSE " + json.dumps(sorted(ports)))

    def _i_user(self, st: StageState, ins: Instruction) -> Step:
        st.config["User"] = self._expand(ins.value, st.subst(), ins)
        self.warn(
            ins,
            f"USER {st.config['User']} is recorded in the image; RUN steps and containers run as you",
        )
        return Step("USER " + str(st.config["User"]))

    def _i_stopsignal(self, st: StageState, ins: Instruction) -> Step:
        st.config["StopSignal"] = self._expand(ins.value, st.subst(), ins)
        return Step("STOPSIGNAL " + str(st.config["StopSignal"]))

    def _i_volume(self, st: StageState, ins: Instruction) -> Step:
        paths = list(ins.json) if ins.json is not None else self._words(ins.value, st.subst(), ins)
        volumes = dict(st.config.get("Volumes") or {})  # type: ignore[call-overload]
        volumes.update({p: {} for p in paths})
        st.config["Volumes"] = volumes
        self.warn(
            ins,
            "VOLUME is recorded in the image; the embedded cluster mounts only the volumes a pod declares",
        )
        return Step("VOLUME " + json.dumps(sorted(volumes)))

    def _i_onbuild(self, st: StageState, ins: Instruction) -> Step:
        st.config["OnBuild"] = [*(st.config.get("OnBuild") or []), ins.value]  # type: ignore[misc]
        return Step("ONBUILD " + ins.value)

    def _i_healthcheck(self, st: StageState, ins: Instruction) -> Step:
        if ins.value.upper() == "NONE":
            st.config["Healthcheck"] = {"Test": ["NONE"]}
            return Step("HEALTHCHECK NONE")
        if not ins.value.upper().startswith("CMD"):
            raise BuildError(
                f"Dockerfile line {ins.line}: HEALTHCHECK needs CMD or NONE",
                "write HEALTHCHECK [--interval=30s] CMD command",
                line=ins.line,
            )
        check: dict[str, object] = {}
        for name, value in ins.flags:
            field_name = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                          "start-interval": "StartInterval", "retries": "Retries"}.get(name)  # fmt: skip
            if field_name is None:
                raise BuildError(
                    f"Dockerfile line {ins.line}: HEALTHCHECK has no flag --{name}",
                    "remove it",
                    line=ins.line,
                )
            check[field_name] = int(value) if name == "retries" else duration_ns(value, ins)
        command = ins.value[3:].strip()
        check["Test"] = ["CMD", *ins.json] if ins.json is not None else ["CMD-SHELL", command]
        st.config["Healthcheck"] = check
        self.warn(
            ins, "HEALTHCHECK is recorded in the image; Kubernetes does not run it (use a livenessProbe)"
        )
        return Step("HEALTHCHECK " + json.dumps(check, sort_keys=True))

    # -- RUN -----------------------------------------------------------------------------------

    def _i_run(self, st: StageState, ins: Instruction) -> Step:
        for name, value in ins.flags:
            if name not in RUN_FLAGS_IGNORED:
                raise BuildError(
                    f"Dockerfile line {ins.line}: RUN has no flag --{name}", "remove it", line=ins.line
                )
            self.warn(ins, f"RUN --{name}={value} is ignored by labkit's builder: the step runs without it")
        if st.base is not None and not st.base.has_shell:
            raise BuildError(
                f"Dockerfile line {ins.line}: RUN needs a shell, and {st.base.reference} has none",
                "start the stage FROM busybox or python:3.12-slim if it must RUN commands",
                line=ins.line,
            )
        argv = self._run_argv(st, ins)
        refuse_package_managers(ins, argv)
        env = {**st.args, **st.env}
        material = "RUN " + json.dumps([argv, sorted(env.items()), st.workdir])
        return Step(material, lambda: self._run(st, ins, argv, env), relocatable=True)

    def _run_argv(self, st: StageState, ins: Instruction) -> list[str]:
        if ins.json is not None:
            return list(ins.json)
        shell = list(st.config.get("Shell") or DEFAULT_SHELL)  # type: ignore[call-overload]
        if ins.heredocs and re.fullmatch(r"\s*<<-?\s*['\"]?\w+['\"]?\s*", ins.value):
            body = ins.heredocs[0].body
            if body.startswith("#!"):  # a script with its own interpreter: run it as a file
                return [*shell, SCRIPT_RUNNER.replace("BODY", body)]
            return [*shell, body]
        script = ins.value + "".join(f"\n{h.body}{h.name}" for h in ins.heredocs)
        return [*shell, script]

    def _run(self, st: StageState, ins: Instruction, argv: list[str], env: dict[str, str]) -> set[str]:
        root = st.root
        (root / st.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        python = st.base is not None and st.base.python
        tools = tools_dir(self.store) if python else None
        view, run_env = run_view(root, st.workdir, env, tools)
        isolation = run_isolation(ins)
        program = view.which(argv[0], run_env["PATH"])
        if program is None:
            raise BuildError(
                f'Dockerfile line {ins.line}: {ins.original}: "{argv[0]}": executable file not found',
                "check the program's name; RUN uses the image's programs, then this machine's",
                line=ins.line,
            )
        made = view.stubs()
        own_for(isolation, root)
        try:
            command = isolation.command(view, [program, *argv[1:]])
            code, tail = self._stream(st, ins, command, root, run_env)
        finally:
            view.remove_stubs(made)
        if code != 0:
            shown = "\n".join(tail[-OUTPUT_TAIL:])
            raise BuildError(
                f"Dockerfile line {ins.line}: {ins.original} failed with exit code {code}"
                + (f"; its output ends with:\n{shown}" if shown else " (it printed nothing)"),
                "fix the command (try it in a terminal), then build again: the steps before it are cached",
                line=ins.line,
                output="\n".join(tail),
                exit_code=code,
            )
        return set()

    def _stream(
        self, st: StageState, ins: Instruction, argv: list[str], cwd: Path, env: dict[str, str]
    ) -> tuple[int, list[str]]:
        tail: list[str] = []
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                tail = [*tail[-(OUTPUT_TAIL * 4) :], line]
                self.emit(ins, st.stage.label, "output", output=line)
            code = proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        return (128 - code if code < 0 else code), tail

    # -- COPY and ADD ------------------------------------------------------------------------------

    def _i_copy(self, st: StageState, ins: Instruction) -> Step:
        return self._copy(st, ins, add=False)

    def _i_add(self, st: StageState, ins: Instruction) -> Step:
        return self._copy(st, ins, add=True)

    def _copy(self, st: StageState, ins: Instruction, add: bool) -> Step:
        allowed = COPY_FLAGS | ({"checksum", "keep-git-dir"} if add else set())
        for name, value in ins.flags:
            if name not in allowed:
                raise BuildError(
                    f"Dockerfile line {ins.line}: {ins.keyword} --{name} is not supported by this builder",
                    f"remove it; {ins.keyword} takes --from, --chown, --chmod and --link",
                    line=ins.line,
                )
            if name == "chown":
                self.warn(ins, f"{ins.keyword} --chown={value} is ignored: files belong to your own user")
        args = list(ins.json) if ins.json is not None else self._words(ins.value, st.subst(), ins)
        if len(args) < 2:
            raise BuildError(
                f"Dockerfile line {ins.line}: {ins.keyword} needs a source and a destination",
                f"write {ins.keyword} SOURCE... DEST, e.g. {ins.keyword} server.py /app/",
                line=ins.line,
            )
        sources, dest = args[:-1], args[-1]
        mode = chmod_flag(ins)
        if ins.heredocs:
            return self._copy_heredocs(st, ins, sources, dest, mode)
        source = ins.flag("from")
        if source:
            return self._copy_from(st, ins, self._expand(source, self.global_args, ins), sources, dest, mode)
        for src in sources:
            if add and re.match(r"^(https?|git|ssh)://|^git@", src):
                raise BuildError(
                    f"Dockerfile line {ins.line}: ADD {src}: labkit's builder does not download files",
                    "download the file into the build context and COPY it",
                    line=ins.line,
                )
        selected = [m for src in sources for m in self.ctx.select(src, ins.original, ins.line)]
        check_many(ins, len(selected), dest)
        digest = self.ctx.digest([e for _, entries in selected for e in entries])
        material = f"{ins.keyword} " + json.dumps([[m for m, _ in selected], dest, mode, digest])

        def action() -> set[str]:
            touched: set[str] = set()
            for match, entries in selected:
                base = self.ctx.root / match if match else self.ctx.root
                many = len(selected) > 1 or base.is_dir()
                for entry in entries:
                    src = self.ctx.path(entry)
                    rel = os.path.relpath(src, base) if base.is_dir() and src != base else ""
                    if add and entry.kind == "file" and not rel and is_archive(src):
                        touched |= extract(src, target_path(st.root, st.workdir, dest, "", True))
                        continue
                    target = target_path(
                        st.root, st.workdir, dest, rel or posixpath.basename(entry.path), many
                    )
                    touched.add(place(src, target, st.root, mode))
            return touched

        return Step(material, action)

    def _copy_from(
        self, st: StageState, ins: Instruction, ref: str, sources: list[str], dest: str, mode: int | None
    ) -> Step:
        stage = self.df.stage(ref)
        if stage is not None and stage.index in self.states and stage.index != st.stage.index:
            other = self.states[stage.index]
            origin = other.key
            root_of: Callable[[], Path] = lambda: (self._materialize(other), other.root)[1]  # noqa: E731
        else:
            image = self.store.find(ref)
            if image is None:
                names = ", ".join(s.label for s in self.df.stages[: st.stage.index]) or "none"
                raise BuildError(
                    f"Dockerfile line {ins.line}: {ins.keyword} --from={ref}: no earlier stage and no image "
                    f"labkit built has that name",
                    f"earlier stages: {names}; images: labkit image ls",
                    line=ins.line,
                )
            origin = image.id
            root_of = lambda: image.rootfs  # noqa: E731
        clean = [posixpath.normpath("/" + s) for s in sources]
        material = f"{ins.keyword} --from " + json.dumps([origin, clean, dest, mode])

        def action() -> set[str]:
            root = root_of()
            touched: set[str] = set()
            matches = []
            for src in clean:
                found = (
                    sorted(root.glob(src.lstrip("/")))
                    if re.search(r"[*?\[]", src)
                    else [root / src.lstrip("/")]
                )
                found = [f for f in found if f.exists() or f.is_symlink()]
                if not found:
                    raise BuildError(
                        f"Dockerfile line {ins.line}: {ins.keyword} --from={ref}: {src} not found in {ref}",
                        "check the path: it is absolute in that stage's filesystem",
                        line=ins.line,
                    )
                matches += found
            check_many(ins, len(matches), dest)
            for match in matches:
                if match.is_dir() and not match.is_symlink():
                    for top, dirs, files in os.walk(match):
                        for name in [*dirs, *files]:
                            src = Path(top) / name
                            if src.is_dir() and not src.is_symlink():
                                continue
                            touched.add(
                                place(
                                    src,
                                    target_path(st.root, st.workdir, dest, os.path.relpath(src, match), True),
                                    st.root,
                                    mode,
                                )
                            )
                else:
                    touched.add(
                        place(
                            match,
                            target_path(st.root, st.workdir, dest, match.name, len(matches) > 1),
                            st.root,
                            mode,
                        )
                    )
            return touched

        return Step(material, action)

    def _copy_heredocs(
        self, st: StageState, ins: Instruction, sources: list[str], dest: str, mode: int | None
    ) -> Step:
        bodies = {f"<<{h.name}": h for h in ins.heredocs}
        files = []
        for src in sources:
            doc = bodies.get(src.replace("<<-", "<<").replace("'", "").replace('"', ""))
            if doc is None:
                raise BuildError(
                    f"Dockerfile line {ins.line}: {ins.keyword} {src}: only heredocs may be mixed here",
                    "copy files and heredocs in separate instructions",
                    line=ins.line,
                )
            text = self._expand(doc.body, st.subst(), ins) if doc.expand else doc.body
            files.append((doc.name, text))
        material = f"{ins.keyword} <<" + json.dumps([files, dest, mode])

        def action() -> set[str]:
            touched = set()
            for name, text in files:
                target = target_path(st.root, st.workdir, dest, name, len(files) > 1)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                if mode is not None:
                    os.chmod(target, mode)
                touched.add(str(target.relative_to(st.root)))
            return touched

        return Step(material, action)

    # -- the image ---------------------------------------------------------------------------------

    def _commit(self, st: StageState) -> tuple[str, int]:
        """Store the stage as an image (unless the same image is there); its ID and size."""
        base = st.base
        config = {**st.config, "Env": [f"{k}={v}" for k, v in st.env.items()]}
        document = {
            "architecture": architecture(),
            "os": "linux",
            "created": st.history[-1].created if st.history else "",
            "config": config,
            "history": [
                {
                    "created": h.created,
                    "created_by": h.created_by,
                    **({"empty_layer": True} if h.empty_layer else {}),
                }
                for h in st.history
            ],
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + k for k in st.layers]},
            "labkit": {
                "layers": st.layers,
                "chain": st.key,
                "base": base.reference if base else "",
                "describe": base.describe if base else "",
                "parent": base.image.id if base and base.image else "",
                "shell": base.has_shell if base else True,
                "python": base.python if base else False,
            },
        }
        blob = json.dumps(document, sort_keys=True, separators=(",", ":"))
        image_id = "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
        existing = self.store.find(image_id)
        if existing is not None:
            return image_id, existing.size
        self._materialize(st)
        size = sum(v[1] for v in snapshot(st.root).values() if stat.S_ISREG(v[0]))
        final = self.store.image_path(image_id)
        relocate(st.root, st.relocated, st.root, final / "rootfs")
        (st.dir / "config.json").write_text(blob)
        (st.dir / "info.json").write_text(json.dumps({"size": size, "created": _now()}))
        self.store.commit_image(st.dir, image_id)
        return image_id, size
