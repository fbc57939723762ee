"""The Docker path: labkit's overhead over the ``docker build`` command line, as a ratio (target ≤ 1.2).

Both build the same context (a small web service: 5 steps on the local busybox base) with the
same engine and the same (classic) builder: ``docker build`` runs with DOCKER_BUILDKIT=0, as
the docker SDK only drives the classic builder. Runs alternate between the two so drift in the
engine affects both alike. Two cases:

- cold: every step runs (``--no-cache`` / ``no_cache=True``);
- cache hit: an unchanged rebuild, every step "Using cache".

labkit's time is ``DockerBuilder.build()`` in a running Python (as in a notebook): sending the
context, following the stream, then reading the image's size and history. The command line's
time is the ``docker build`` process from start to exit. Connecting (``DockerBuilder()``) is
reported apart. The images it tags are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import common
from common import Row

from labkit.errors import LabError
from labkit.images.docker_builder import DockerBuilder

TARGET_RATIO = 1.2
DOCKERFILE = """\
FROM {base}
ENV GREETING=hello TOKEN={token}
WORKDIR /www
COPY . .
RUN echo "built $GREETING" && ls /www
CMD httpd -f -p "$PORT" -h /www
"""


def make_context(folder: Path, base: str) -> str:
    """Write the service's files and Dockerfile into ``folder``; the Dockerfile's text."""
    dockerfile = DOCKERFILE.format(base=base, token=uuid.uuid4().hex)
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "index.html").write_text("<h1>posts</h1>\n")
    (folder / "style.css").write_text("h1 { color: teal }\n" * 50)
    return dockerfile


def cli_build(folder: Path, tag: str, no_cache: bool) -> None:
    """``docker build`` on the command line, classic builder, output discarded."""
    command = ["docker", "build", "-t", tag, *(["--no-cache"] if no_cache else []), str(folder)]
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def engine_version() -> str:
    """The engine's version, as the command line reports it."""
    return _docker_version("{{.Server.Version}}")


def cli_version() -> str:
    """The command line's own version."""
    return _docker_version("{{.Client.Version}}")


def _docker_version(template: str) -> str:
    """A field of `docker version`, or "unknown"."""
    done = subprocess.run(
        ["docker", "version", "--format", template], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def timed(action: Callable[[], object]) -> float:
    """Seconds one call takes."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def compare(
    builder: DockerBuilder, folder: Path, dockerfile: str, runs: int, no_cache: bool, deadline: float
) -> tuple[list[float], list[float]]:
    """Alternate labkit and command-line builds; their times in seconds."""
    labkit_s: list[float] = []
    cli_s: list[float] = []
    for _ in range(runs):
        if time.monotonic() > deadline:
            break
        labkit_s.append(
            timed(lambda: builder.build(dockerfile, folder, tag="bench-labkit:1", no_cache=no_cache))
        )
        cli_s.append(timed(lambda: cli_build(folder, "bench-cli:1", no_cache)))
    return labkit_s, cli_s


def rows_for(label: str, labkit_s: list[float], cli_s: list[float]) -> list[Row]:
    """Median times and the ratio, as table rows."""
    ratio = statistics.median(labkit_s) / statistics.median(cli_s)
    return [
        Row(
            "docker build",
            f"{label}: labkit / `docker build`, median ratio",
            f"{ratio:.2f}",
            f"≤ {TARGET_RATIO}",
            ratio <= TARGET_RATIO,
        ),
        Row(
            "docker build",
            f"{label}: median seconds (n={len(labkit_s)})",
            f"labkit {statistics.median(labkit_s):.3f} s, docker build {statistics.median(cli_s):.3f} s",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold", type=common.bounded_int(1, 50), default=5, help="cold builds each (5)")
    parser.add_argument(
        "--cached", type=common.bounded_int(1, 100), default=15, help="cache-hit builds each (15)"
    )
    common.add_common_args(parser, max_seconds=300)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    deadline = time.monotonic() + args.max_seconds
    info = common.machine()
    connect_s = time.perf_counter()
    builder = DockerBuilder()
    connect_s = time.perf_counter() - connect_s
    info["docker"] = engine_version()
    rows: list[Row] = []
    extra: dict[str, object] = {"connect_s": connect_s}
    try:
        base = builder.import_busybox_base()
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
            folder = Path(tmp)
            dockerfile = make_context(folder, base)
            print(f"cold: {args.cold} builds each, alternating", flush=True)
            cold = compare(builder, folder, dockerfile, args.cold, True, deadline)
            print(f"cache hit: {args.cached} builds each, alternating", flush=True)
            cached = compare(builder, folder, dockerfile, args.cached, False, deadline)
        rows += rows_for("cold", *cold) + rows_for("cache hit", *cached)
        rows.append(Row("docker build", "connecting: DockerBuilder() (once per lab)", f"{connect_s:.3f} s"))
        extra.update(cold={"labkit": cold[0], "cli": cold[1]}, cached={"labkit": cached[0], "cli": cached[1]})
    finally:
        for tag in ("bench-labkit:1", "bench-cli:1"):
            try:
                builder.remove_image(tag)
            except LabError:  # not there when a run failed early
                pass
        builder.close()
    print(f"\ndocker engine {info['docker']}, docker command line {cli_version()}")
    common.report(rows, info, args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
