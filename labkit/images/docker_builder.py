"""Build images with a Docker Engine through the docker SDK, streaming progress as it happens.

The engine's classic builder (the only one the SDK drives, and Debian's engine has no
BuildKit plugin) prints ``Step N/M : INSTRUCTION`` lines, `` ---> Using cache``, the output of
RUN and the layer ids. :class:`_BuildStream` turns those into :class:`BuildStep` events and
labkit errors that name the Dockerfile line; :func:`scan` maps step numbers to lines the way
the classic builder's parser counts instructions (it knows no heredocs). Steps are numbered
and counted as the embedded builder does: a FROM is a step (a cache hit when its image is
already here), an ARG before the first FROM is not.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import struct
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

import docker
import docker.errors
import docker.utils
from docker.models.images import Image as DockerImage
from docker.utils.build import match_tag

from labkit.errors import BaseImageError, BuildError, UsageError
from labkit.images.docker_runner import EMBEDDED_HINT, DockerRunner, RunningContainer, connect, converted
from labkit.images.models import BuildResult, BuildStep, HistoryEntry, ProgressCallback, StepState
from labkit.shared.imagestore import ImageConfig

Context = str | os.PathLike[str] | Mapping[str, str | bytes] | None
"""A build context: a directory, files by relative name (what a notebook wrote), or nothing."""

LOCAL_BASE = "labkit-busybox:1"  # the base import_busybox_base() makes
BUSYBOX_CONFIG = ["ENV PATH=/bin", 'CMD ["sh"]']
OUTPUT_TAIL = 20  # lines of a failed step's output shown in the error message
PT_INTERP = 3  # ELF program header type of a dynamic executable's loader
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12})$")
_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_PARSE_LINE = re.compile(r"line (\d+)")


@dataclass(frozen=True)
class Instruction:
    """One instruction as the classic builder counts it: where it starts and its stage."""

    line: int  # 1-based line the instruction starts on
    keyword: str  # upper case: FROM, RUN, ...
    text: str  # the instruction with continuations joined
    stage: str  # ``AS`` name or index of its stage; "" for ARGs before the first FROM

    @property
    def is_step(self) -> bool:
        """A build step as labkit counts them: anything but an ARG before the first FROM."""
        return bool(self.stage)


def scan(dockerfile: str) -> list[Instruction]:
    """The instructions of a Dockerfile in build order (comments, blank lines, directives skipped)."""
    lines = dockerfile.splitlines()
    escape, first = _directives(lines)
    found: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(lines[first:], start=first + 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        body = raw.rstrip()
        if body.endswith(escape):
            parts.append(body[: -len(escape)].strip())
            continue
        parts.append(stripped)
        found.append(_instruction(start, " ".join(parts), found))
        parts = []
    if parts:
        found.append(_instruction(start, " ".join(parts), found))
    return found


def _directives(lines: list[str]) -> tuple[str, int]:
    """The escape character and the index of the first line after the parser directives."""
    escape = "\\"
    for index, line in enumerate(lines):
        match = _DIRECTIVE.match(line.strip())
        if not match:
            return escape, index
        if match.group(1).lower() == "escape":
            escape = match.group(2)
    return escape, len(lines)


def _instruction(line: int, text: str, before: list[Instruction]) -> Instruction:
    """An instruction, with the stage it belongs to given the ones before it."""
    words = text.split()
    keyword = words[0].upper()
    stage = before[-1].stage if before else ""
    if keyword == "FROM":
        index = sum(1 for i in before if i.keyword == "FROM")
        stage = words[3] if len(words) >= 4 and words[2].lower() == "as" else str(index)
    return Instruction(line, keyword, text, stage)


class DockerBuilder:
    """Builds images with a Docker Engine and runs containers from them for a quick check.

    Containers it starts are removed by :meth:`close`, on leaving a ``with`` block, or at exit.
    """

    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client or connect()
        self._runner = DockerRunner(self._client)

    def build(
        self,
        dockerfile: str,
        context: Context = None,
        *,
        tag: str = "",
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        no_cache: bool = False,
        progress: ProgressCallback | None = None,
    ) -> BuildResult:
        """Build ``dockerfile`` (its text) with ``context``; ``progress`` gets each step event live.

        Raises BuildError naming the Dockerfile line for a failing step (with its output and
        exit code), BaseImageError when FROM names an image the engine cannot get, UsageError
        for an empty Dockerfile, a bad tag or context, and EngineError when the engine is gone.
        """
        instructions = scan(dockerfile)
        _check_request(instructions, tag, target)
        started = time.monotonic()
        stream = _BuildStream(instructions, progress, base_cached=not no_cache)
        with (
            _context_root(context) as root,
            _context_tar(root, dockerfile) as (archive, name),
            converted(),
        ):
            try:
                for event in self._client.api.build(
                    fileobj=archive,
                    custom_context=True,
                    dockerfile=name,
                    tag=tag or None,
                    buildargs=dict(build_args or {}),
                    target=target,
                    nocache=no_cache,
                    rm=True,
                    forcerm=True,
                    pull=False,
                    decode=True,
                    timeout=None,
                ):
                    stream.feed(event)
            except docker.errors.APIError as err:
                raise _refused(err) from err
        return self._result(stream, tag, time.monotonic() - started)

    def image_config(self, reference: str) -> ImageConfig:
        """What a container started from ``reference`` gets: entrypoint, cmd, env, workdir, ports."""
        with converted():
            config = self._client.images.get(reference).attrs.get("Config") or {}
        pairs = (item.partition("=") for item in config.get("Env") or [])
        env = tuple((key, value) for key, _, value in pairs)
        ports = sorted(int(p.split("/")[0]) for p in (config.get("ExposedPorts") or {}))
        return ImageConfig(
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            env=env,
            working_dir=config.get("WorkingDir") or "",
            exposed_ports=tuple(ports),
        )

    def import_busybox_base(self, reference: str = LOCAL_BASE, busybox: str = "/bin/busybox") -> str:
        """Make a base image from this machine's static busybox, for building with no registry.

        The image holds ``/bin/busybox``, a symlink per applet (``sh``, ``httpd``, ``nc``, ...)
        and an empty ``/tmp``; an image already under ``reference`` is kept. Returns ``reference``.
        """
        with converted():
            try:
                self._client.images.get(reference)
                return reference
            except docker.errors.ImageNotFound:
                pass
            repository, _, tag = reference.rpartition(":")
            self._client.api.import_image_from_data(
                _busybox_rootfs(Path(busybox)), repository=repository, tag=tag, changes=BUSYBOX_CONFIG
            )
        return reference

    def remove_image(self, reference: str) -> None:
        """Remove an image (and its tag) from the engine."""
        with converted():
            self._client.images.remove(reference, force=True)

    def run(
        self,
        image: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        command: str | Sequence[str] | None = None,
        name: str | None = None,
        ready_timeout: float = 10.0,
    ) -> RunningContainer:
        """Run ``image`` on the host network with ``PORT`` set; with a port, wait until it answers."""
        return self._runner.run(
            image, port=port, env=env, command=command, name=name, ready_timeout=ready_timeout
        )

    def close(self) -> None:
        """Remove the containers this builder started and let go of the engine connection."""
        self._runner.close()
        self._client.close()

    def __enter__(self) -> DockerBuilder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _result(self, stream: _BuildStream, tag: str, seconds: float) -> BuildResult:
        """The BuildResult for a finished build, from the engine's view of the image."""
        with converted():
            image = self._client.images.get(stream.image_id or stream.last_layer)
            history = _history(image)
        return BuildResult(
            tag=tag,
            id=str(image.id),
            size=int(image.attrs.get("Size") or 0),
            cache_hits=stream.cache_hits,
            steps=stream.counted,
            history=history,
            warnings=tuple(stream.warnings),
            builder=self.name,
            seconds=seconds,
        )


def _check_request(instructions: list[Instruction], tag: str, target: str | None) -> None:
    """Refuse what the engine would refuse, with labkit's wording: before sending the context."""
    if not instructions:
        raise UsageError("The Dockerfile is empty", hint="Start it with FROM and a base image.")
    if tag and not match_tag(tag):
        raise UsageError(
            f"tag {tag!r} is not a valid image reference",
            hint="Use lower-case NAME[:VERSION], e.g. posts:1.0.",
        )
    stages = {i.stage for i in instructions if i.keyword == "FROM"}
    if target is not None and target not in stages:
        named = sorted(s for s in stages if not s.isdigit())
        raise UsageError(
            f"target {target!r} is not a stage of this Dockerfile",
            hint=f"Its named stages: {', '.join(named) or 'none (name one with FROM ... AS NAME)'}.",
        )


@contextlib.contextmanager
def _context_root(context: Context) -> Iterator[Path]:
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
            path = Path(tmp, _context_name(name))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        yield Path(tmp)


def _context_name(name: str) -> PurePosixPath:
    """A context file's name, refused when it is empty, absolute or leaves the context."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise UsageError(
            f"context file name {name!r} must be a relative path inside the context",
            hint="Use names like 'app.py' or 'src/app.py'.",
        )
    return path


@contextlib.contextmanager
def _context_tar(root: Path, dockerfile: str) -> Iterator[tuple[IO[bytes], str]]:
    """The context as a tar with the Dockerfile text added under a fresh name, as `docker build -f-`.

    Both that name and .dockerignore are listed in the .dockerignore sent along, so the engine
    reads them and then drops them from the context: `COPY . .` copies neither.
    """
    name = f".labkit.Dockerfile.{secrets.token_hex(8)}"
    ignore = root / ".dockerignore"
    patterns = _ignore_patterns(ignore.read_text()) if ignore.is_file() else []
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


def _ignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file (comments and blank lines dropped)."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _refused(err: docker.errors.APIError) -> BuildError:
    """The error for a build the engine refused before running any step (e.g. a parse error)."""
    reason = str(err.explanation or err)
    match = _PARSE_LINE.search(reason)
    line = int(match.group(1)) if match else None
    where = f"Dockerfile line {line}: " if line else ""
    return BuildError(
        f"{where}the Docker Engine refused the Dockerfile: {reason}",
        hint="Check the instruction's spelling and arguments (see the Dockerfile reference).",
        line=line,
    )


class _BuildStream:
    """Turns the classic builder's JSON messages into BuildStep events, counts and errors."""

    def __init__(
        self, instructions: list[Instruction], progress: ProgressCallback | None, base_cached: bool
    ) -> None:
        self._instructions = instructions
        self._progress = progress
        self._base_cached = base_cached  # a FROM whose image is here counts as a cache hit
        self._skipped = sum(1 for i in instructions if not i.is_step)  # the engine numbers them too
        self._pending = ""  # text after the last newline
        self._step: Instruction | None = None
        self._number = self._total = 0
        self._state: StepState | None = None  # the last event sent for the current step
        self._started = 0.0
        self._output: list[str] = []
        self.image_id = ""  # from the engine's final aux message
        self.last_layer = ""  # short id of the last step's result
        self.counted = 0  # steps run or taken from the cache (ARGs before the first FROM are not steps)
        self.cache_hits = 0
        self.warnings: list[str] = []

    def feed(self, event: dict[str, Any]) -> None:
        """Take one decoded message of the engine's build stream."""
        if "stream" in event:
            self._text(str(event["stream"]))
        if "status" in event:  # pulling a base image
            self._line(" ".join(str(event[k]) for k in ("status", "id", "progress") if event.get(k)))
        if "aux" in event and isinstance(event["aux"], dict):
            self.image_id = str(event["aux"].get("ID", self.image_id))
        if "error" in event:
            self._fail(event)

    def _text(self, chunk: str) -> None:
        """Split the stream into lines (messages are not line-aligned)."""
        *lines, self._pending = (self._pending + chunk).split("\n")
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        """Act on one line of builder output."""
        step = _STEP.match(line)
        if step:
            self._begin(int(step.group(1)), int(step.group(2)))
        elif line.startswith("[Warning]") or line.startswith("[WARNING]"):
            self.warnings.append(line.split("]", 1)[1].strip())
        elif self._step is None or line.startswith(("Successfully built ", "Successfully tagged ")):
            return
        elif line == " ---> Using cache":
            self._emit("cached")
        elif _LAYER.match(line):
            self.last_layer = line.split()[-1]
            if self._step.keyword == "FROM" and self._state is None and self._base_cached:
                self._emit("cached")  # the image was here: nothing pulled, nothing run
            self._end()
        elif line.startswith((" ---> Running in ", "Removing intermediate container ")):
            self._ensure_started()
        else:
            self._ensure_started()
            self._output.append(line + "\n")
            self._emit("output", line + "\n")

    def _begin(self, number: int, total: int) -> None:
        """A new step: finish the one before (an ARG before FROM prints no layer line)."""
        self._end()
        step = self._instructions[number - 1] if number <= len(self._instructions) else None
        self._step = step if step is not None and step.is_step else None
        self._number, self._total = number - self._skipped, total - self._skipped
        self._state = None
        self._output = []
        self._started = time.monotonic()
        if self._step is not None:
            self.counted += 1

    def _ensure_started(self) -> None:
        """Send ``start`` once the step turns out not to come from the cache."""
        if self._state is None:
            self._emit("start")

    def _end(self) -> None:
        """The current step finished (cached steps already said so)."""
        if self._step is None or self._state in ("cached", "done", "error"):
            return
        self._ensure_started()
        self._emit("done")

    def _emit(self, state: StepState, output: str = "") -> None:
        """Send one event for the current step."""
        if self._step is None:
            return
        if state == "cached":
            self.cache_hits += 1
        if state != "output":
            self._state = state
        if self._progress is not None:
            self._progress(
                BuildStep(
                    number=self._number,
                    total=self._total,
                    instruction=self._step.text,
                    state=state,
                    stage=self._step.stage,
                    line=self._step.line,
                    output=output,
                    seconds=time.monotonic() - self._started if state in ("done", "error") else 0.0,
                )
            )

    def _fail(self, event: dict[str, Any]) -> None:
        """The build failed: send ``error`` and raise the labkit error for it."""
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        detail = event.get("errorDetail") or {}
        message = str(detail.get("message") or event["error"]).strip()
        output = "".join(self._output)
        self._ensure_started()
        self._emit("error", output)
        raise _step_error(self._step, message, detail.get("code"), output)


def _step_error(step: Instruction | None, message: str, code: int | None, output: str) -> BuildError:
    """The labkit error for a step that failed, naming its line."""
    if step is None:
        return BuildError(f"The build failed: {message}", hint="The engine's message says why.")
    where = f"Dockerfile line {step.line}: `{step.text}`"
    if step.keyword == "FROM":
        return _base_error(step, where, message)
    tail = "".join(output.splitlines(keepends=True)[-OUTPUT_TAIL:])
    printed = f"\n--- it printed ---\n{tail.rstrip()}" if tail.strip() else " (it printed nothing)"
    if code:
        return BuildError(
            f"{where} failed with exit code {code}{printed}",
            hint="Fix the command and build again; the steps before it come from the cache.",
            line=step.line,
            output=output,
            exit_code=int(code),
        )
    hint = "The engine's message says what went wrong."
    if step.keyword in ("COPY", "ADD") and ("not found" in message or "no such file" in message):
        hint = (
            "COPY and ADD read only from the build context (the directory or files given to build), "
            "minus what .dockerignore excludes: check the path."
        )
    return BuildError(f"{where} failed: {message}", hint=hint, line=step.line, output=output)


def _base_error(step: Instruction, where: str, message: str) -> BaseImageError:
    """The error for a base image the engine could not pull."""
    image = step.text.split()[1] if len(step.text.split()) > 1 else "?"
    unknown = any(s in message for s in ("not found", "pull access denied", "manifest unknown"))
    why = "Check the image's name and tag" if unknown else "No registry can be reached from here (offline?)"
    return BaseImageError(
        f"{where}: the base image {image} is not here and cannot be pulled: {message}",
        hint=(
            f"{why}. Use a base image that is already here (see `docker images`), make one from this "
            f"machine's busybox with `DockerBuilder().import_busybox_base()` (then FROM {LOCAL_BASE}), "
            f"{EMBEDDED_HINT}."
        ),
        line=step.line,
    )


def _history(image: DockerImage) -> tuple[HistoryEntry, ...]:
    """An image's history, oldest first, with the instruction that made each layer."""
    entries = []
    for row in reversed(image.history()):
        raw = str(row.get("CreatedBy") or "")
        size = int(row.get("Size") or 0)
        entries.append(
            HistoryEntry(
                created_by=_instruction_of(raw) or str(row.get("Comment") or ""),
                created=_rfc3339(row.get("Created")),
                size=size,
                empty_layer=size == 0 and "#(nop)" in raw,
            )
        )
    return tuple(entries)


def _instruction_of(created_by: str) -> str:
    """The instruction behind a classic-builder CreatedBy (``/bin/sh -c #(nop)  ENV A=1``)."""
    nop = "/bin/sh -c #(nop) "
    if created_by.startswith(nop):
        return created_by[len(nop) :].strip()
    return f"RUN {created_by}" if created_by else ""


def _rfc3339(seconds: Any) -> str:
    """RFC 3339 time for a Unix timestamp ("" when absent)."""
    if not isinstance(seconds, int | float) or seconds <= 0:
        return ""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _busybox_rootfs(busybox: Path) -> bytes:
    """A root filesystem as a tar: bin/busybox, a symlink per applet, and an empty tmp/."""
    if not busybox.is_file() or not _is_static(busybox):
        raise UsageError(
            f"{busybox} is not a statically linked busybox",
            hint="Install Debian's busybox-static (apt-get install busybox-static), whose /bin/busybox is.",
        )
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder, mode in (("bin", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in sorted(set(listed.split()) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def _is_static(binary: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP): it needs no shared libraries."""
    data = binary.read_bytes()
    if data[:4] != b"\x7fELF":
        return False
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    offset_at, header = (0x20, 0x36) if wide else (0x1C, 0x2A)
    table = struct.unpack_from(order + ("Q" if wide else "I"), data, offset_at)[0]
    size, count = struct.unpack_from(order + "HH", data, header)
    types = (struct.unpack_from(order + "I", data, table + i * size)[0] for i in range(count))
    return PT_INTERP not in types
