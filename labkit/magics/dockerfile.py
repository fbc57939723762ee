"""``%%dockerfile TAG [--context DIR] [--build-arg K=V]... [--no-cache] [--run] [--port N]``.

Builds the cell with ``lab.build``, showing each step as it goes, then prints one summary
line: ``posts:0.0.1 built in 0.4 s: 5 steps, 2 cached, 12.3 MB``. With ``--run`` the image is
then started once (``lab.run``) and its address printed; running it again stops the last run
of the same tag first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.images.models import BuildResult, BuildStep
from labkit.magics import args
from labkit.magics.render import Progress, size

if TYPE_CHECKING:
    from labkit.magics.host import MagicsHost

OUTPUT_TAIL = 5  # lines of a running step's output kept in a live display
WIDTH = 72  # an instruction longer than this is shortened in progress lines


class BuildProgress:
    """Turns BuildSteps into progress lines: one per step, plus a running step's output."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tails: dict[int, list[str]] = {}

    def __call__(self, step: BuildStep) -> None:
        """Show one build event."""
        head = f"[{step.number}/{step.total}] {_shorten(step.instruction)}"
        if step.state == "output":
            self._output(step)
        elif step.state == "start":
            self.progress.set(step.number, f"{head}  ..." if self.progress.live else head)
        elif step.state == "cached":
            self.progress.set(step.number, f"{head}  CACHED")
        elif step.state == "done" and self.progress.live:
            self.progress.set(step.number, f"{head}  {step.seconds:.1f} s")
        elif step.state == "error":
            self.progress.set(step.number, f"{head}  ERROR")

    def _output(self, step: BuildStep) -> None:
        lines = [line for line in step.output.splitlines() if line.strip()]
        if not self.progress.live:
            for line in lines:
                print(f"      {line}", flush=True)
            return
        tail = self.tails.setdefault(step.number, [])
        tail.extend(lines)
        del tail[:-OUTPUT_TAIL]
        self.progress.set((step.number, "output"), "\n".join(f"      {line}" for line in tail))


def _shorten(instruction: str) -> str:
    one_line = " ".join(instruction.split())
    return one_line if len(one_line) <= WIDTH else one_line[: WIDTH - 3] + "..."


def summary(result: BuildResult) -> str:
    """The line that ends a build: tag, time, steps, cache hits and size."""
    cached = "all cached" if result.all_cached else f"{result.cache_hits} cached"
    return (
        f"{result.tag} built in {result.seconds:.1f} s: {result.steps} steps, {cached}, {size(result.size)}"
    )


def run(magics: MagicsHost, line: str, cell: str) -> None:
    """The ``%%dockerfile`` magic."""
    opts = args.parse(args.dockerfile, line)
    if opts.port is not None and not opts.run:
        raise args.fail(args.dockerfile, "--port only applies with --run")
    if not cell.strip():
        raise args.fail(
            args.dockerfile, "the cell is empty: write the Dockerfile below the %%dockerfile line"
        )
    lab = magics.lab
    result = lab.build(
        cell,
        opts.tag,
        opts.context,
        build_args=dict(opts.build_args),
        no_cache=opts.no_cache,
        progress=BuildProgress(Progress(magics.shell)),
    )
    for warning in result.warnings:
        print(f"warning: {warning}", flush=True)
    print(summary(result), flush=True)
    if opts.run:
        _run_once(magics, result.tag, opts.port)


def _run_once(magics: MagicsHost, tag: str, port: int | None) -> None:
    previous: Any = magics.runs.pop(tag, None)
    if previous is not None:
        previous.stop()
    running = magics.lab.run(tag, port=port)
    magics.runs[tag] = running
    where = f" at {running.url}" if running.url else f" as {running.name}"
    print(f"{tag} is running{where}", flush=True)
    logs = running.logs().strip()
    if logs:
        print(logs, flush=True)
