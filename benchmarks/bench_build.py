"""labkit's embedded image builder: first builds, unchanged rebuilds, and rebuilds after a change.

The image is a small Python HTTP service (``FROM python:3.12-slim``, ``WORKDIR``, ``ENV``,
``COPY server.py``, a ``RUN`` that writes a file, ``EXPOSE``, ``CMD``), with no pip installs.
A *first build* uses a fresh ``LABKIT_HOME`` each time, so it includes making the image's own
Python environment. An *unchanged rebuild* builds the same Dockerfile and context again (every
step a cache hit). A *changed rebuild* edits ``server.py`` first, so COPY and what follows run.
Builds are timed in-process through :func:`labkit.images.embedded_builder.build`; the
``labkit build`` command line is timed too (it adds the Python interpreter's start).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import Row

sys.path.insert(0, str(common.ROOT))

from labkit.images.embedded_builder import build

FIRST_TARGET_S = 1.0
REBUILD_TARGET_S = 0.2
DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
ENV APP=posts
COPY server.py .
RUN echo "built for $APP" > built.txt
EXPOSE 8080
CMD ["python", "server.py"]
"""
SERVER = "import os\nprint('posts on', os.environ.get('PORT', '8080'))\n"


def make_context(folder: Path) -> Path:
    """The service's Dockerfile and server.py."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "server.py").write_text(SERVER)
    return folder


def timed(context: Path, home: Path, expect_cached: bool | None) -> float:
    """Seconds one build takes; checks it was (or was not) all cache hits."""
    t0 = time.perf_counter()
    result = build(context, "posts:1.0", home=home)
    took = time.perf_counter() - t0
    if expect_cached is not None and result.all_cached != expect_cached:
        raise RuntimeError(
            f"expected all_cached={expect_cached}, got {result.cache_hits}/{result.steps} hits"
        )
    return took


def first_builds(tmp: Path, count: int) -> list[float]:
    """Builds on a fresh LABKIT_HOME each time."""
    context = make_context(tmp / "ctx")
    return [timed(context, tmp / f"home-first-{i}", expect_cached=False) for i in range(count)]


def rebuilds(tmp: Path, count: int, change: bool) -> list[float]:
    """Rebuilds on one home: unchanged, or after an edit of server.py each time."""
    context = make_context(tmp / f"ctx-{change}")
    home = tmp / f"home-rebuild-{change}"
    timed(context, home, expect_cached=False)
    times = []
    for i in range(count):
        if change:
            (context / "server.py").write_text(SERVER + f"# edit {i}\n")
        times.append(timed(context, home, expect_cached=not change))
    return times


def cli_rebuilds(tmp: Path, count: int) -> list[float]:
    """``labkit build`` of an unchanged context, as a user types it."""
    context = make_context(tmp / "ctx-cli")
    env = {**os.environ, "LABKIT_HOME": str(tmp / "home-cli"), "PYTHONPATH": str(common.ROOT)}
    command = [common.PYTHON, "-m", "labkit", "build", "-q", "-t", "posts:1.0", str(context)]
    subprocess.run(command, env=env, check=True, capture_output=True)
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first", type=common.bounded_int(1, 50), default=5, help="first builds (default 5)")
    parser.add_argument(
        "--rebuilds", type=common.bounded_int(1, 500), default=20, help="rebuilds (default 20)"
    )
    parser.add_argument("--cli", type=common.bounded_int(0, 50), default=3, help="CLI rebuilds (default 3)")
    common.add_common_args(parser, max_seconds=300)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-build-") as name:
        tmp = Path(name)
        first = first_builds(tmp, args.first)
        unchanged = rebuilds(tmp, args.rebuilds, change=False)
        changed = rebuilds(tmp, args.rebuilds, change=True)
        cli = cli_rebuilds(tmp, args.cli) if args.cli else []
    for label, values in (("first", first), ("unchanged", unchanged), ("changed", changed), ("cli", cli)):
        if values:
            print(common.describe(label, [v * 1000 for v in values]))
    worst_first, worst_rebuild = max(first), max(unchanged)
    rows = [
        Row(
            "build",
            f"first build, small Python service (max of {len(first)})",
            f"{worst_first:.3f} s (p50 {common.percentile(first, 50):.3f} s)",
            f"≤ {FIRST_TARGET_S} s",
            worst_first <= FIRST_TARGET_S,
        ),
        Row(
            "build",
            f"unchanged rebuild, all cache hits (max of {len(unchanged)})",
            f"{worst_rebuild:.3f} s (p50 {common.percentile(unchanged, 50):.3f} s)",
            f"≤ {REBUILD_TARGET_S} s",
            worst_rebuild <= REBUILD_TARGET_S,
        ),
        Row("build", "rebuild after editing server.py (p50)", f"{common.percentile(changed, 50):.3f} s"),
    ]
    if cli:
        rows.append(
            Row(
                "build",
                "`labkit build` unchanged, incl. Python start (p50)",
                f"{common.percentile(cli, 50):.3f} s",
            )
        )
    common.report(rows, common.machine(), args.json, {"seconds": {"first": first, "unchanged": unchanged}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
