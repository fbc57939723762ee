"""What the Docker Engine's classic builder says, turned into labkit's events and errors.

The classic builder (the only one the SDK drives, and Debian's engine has no BuildKit plugin)
prints ``Step N/M : INSTRUCTION`` lines, `` ---> Using cache``, the output of RUN and the
layer ids. :class:`BuildStream` turns those into :class:`BuildStep` events and labkit errors
that name the Dockerfile line. The engine numbers every instruction, ARGs before the first FROM
too; :func:`engine_steps` lists them in that order from labkit's parser
(:func:`labkit.images.dockerfile.parse`), so step N is the N-th entry. Steps are numbered and
counted as the embedded builder does: a FROM is a step (a cache hit when its image is already
here), an ARG before the first FROM is not. The classic builder knows no heredocs: it refuses
a Dockerfile with one (its body lines are unknown instructions), before any step runs.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import docker.errors

from labkit.errors import BaseImageError, BuildError
from labkit.images import dockerfile
from labkit.images.busybox_base import LOCAL_BASE
from labkit.images.docker_runner import EMBEDDED_HINT
from labkit.images.models import BuildStep, ProgressCallback, StepState

OUTPUT_TAIL = 20  # lines of a failed step's output shown in the error message
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12})$")
_PARSE_LINE = re.compile(r"line (\d+)")


@dataclass(frozen=True)
class EngineStep:
    """One instruction as the classic builder numbers it, with the stage it belongs to."""

    instruction: dockerfile.Instruction
    stage: str  # label (``AS`` name or index) of its stage; "" for ARGs before the first FROM

    @property
    def line(self) -> int:
        """The 1-based line the instruction starts on."""
        return self.instruction.line

    @property
    def keyword(self) -> str:
        """The instruction in upper case: FROM, RUN, ..."""
        return self.instruction.keyword

    @property
    def text(self) -> str:
        """The instruction on one line, as the engine prints it after ``Step N/M :``."""
        return self.instruction.original

    @property
    def is_step(self) -> bool:
        """A build step as labkit counts them: anything but an ARG before the first FROM."""
        return bool(self.stage)


def engine_steps(parsed: dockerfile.Dockerfile) -> list[EngineStep]:
    """The instructions of a parsed Dockerfile in the engine's numbering (global ARGs first)."""
    found = [EngineStep(ins, "") for ins in parsed.global_args]
    found += [EngineStep(ins, stage.label) for stage in parsed.stages for ins in stage.steps]
    return found


def scan(text: str) -> list[EngineStep]:
    """The instructions of a Dockerfile's text in build order; raises the parser's BuildError."""
    return engine_steps(dockerfile.parse(text))


def refused(err: docker.errors.APIError) -> BuildError:
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


class BuildStream:
    """Turns the classic builder's JSON messages into BuildStep events, counts and errors."""

    def __init__(self, steps: list[EngineStep], progress: ProgressCallback | None, base_cached: bool) -> None:
        self._steps = steps
        self._progress = progress
        self._base_cached = base_cached  # a FROM whose image is here counts as a cache hit
        self._skipped = sum(1 for s in steps if not s.is_step)  # the engine numbers them too
        self._pending = ""  # text after the last newline
        self._step: EngineStep | None = None
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
        step = self._steps[number - 1] if number <= len(self._steps) else None
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
        raise step_error(self._step, message, detail.get("code"), output)


def step_error(step: EngineStep | None, message: str, code: int | None, output: str) -> BuildError:
    """The labkit error for a step that failed, naming its line."""
    if step is None:
        return BuildError(f"The build failed: {message}", hint="The engine's message says why.")
    where = f"Dockerfile line {step.line}: `{step.text}`"
    if step.keyword == "FROM":
        return base_error(step, where, message)
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


def base_error(step: EngineStep, where: str, message: str) -> BaseImageError:
    """The error for a base image the engine could not pull."""
    image = step.instruction.value.split()[0]  # the image as written, without FROM's flags
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
