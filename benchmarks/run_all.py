"""Run every benchmark of the embedded cluster and print one summary table.

Each benchmark runs as its own process (with its own temporary cluster) and writes its
results as JSON; this script collects them. Targets are reported, never asserted: the exit
status is non-zero only when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import Row

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "startup": ("bench_startup.py", 600, ["--cold", "2", "--restarts", "2"]),
    "latency": ("bench_latency.py", 600, ["--count", "100"]),
    "list": ("bench_list.py", 300, ["--pods", "200", "--lists", "5", "--kubectl-runs", "1"]),
    "watch": ("bench_watch.py", 120, ["--watchers", "10", "--objects", "100"]),
    "build": ("bench_build.py", 300, ["--first", "2", "--rebuilds", "5", "--cli", "1"]),
    "pods": (
        "bench_pods.py",
        900,
        ["--pods", "10", "--replicas", "10", "--rounds", "1", "--echo-pods", "5", "--scale-pods", "200"],
    ),
    "services": (
        "bench_services.py",
        900,
        ["--repeats", "1", "--seconds", "1", "--latency-requests", "200", "--latency-new", "50"],
    ),
    "isolation": ("bench_isolation.py", 1800, ["--pods", "10", "--seconds", "1", "--repeats", "1"]),
    "streams": ("bench_streams.py", 600, ["--execs", "5", "--seconds", "1", "--repeats", "1"]),
}
# seconds beyond a benchmark's own limit for starting and deleting its clusters
MARGIN = 120


def run_one(name: str, quick: bool, out: Path) -> tuple[list[Row], str | None]:
    """Run one benchmark; its rows, and an error text if it failed."""
    script, max_seconds, quick_args = BENCHMARKS[name]
    cmd = [
        sys.executable,
        str(HERE / script),
        "--json",
        str(out),
        "--max-seconds",
        str(max_seconds),
        *(quick_args if quick else []),
    ]
    print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    try:
        returncode = proc.wait(timeout=max_seconds + MARGIN)
    except subprocess.TimeoutExpired:
        return [], f"timed out after {max_seconds + MARGIN} s"
    finally:
        _stop(proc)
    print(f"=== {name} took {time.monotonic() - t0:.0f} s", flush=True)
    if returncode != 0 or not out.exists():
        return [], f"exited with status {returncode}"
    return [Row(**r) for r in json.loads(out.read_text())["rows"]], None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a benchmark that still runs with SIGTERM (it then deletes its cluster), else SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and print the combined table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        default=None,
        help="run only this benchmark (repeatable; default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small counts (a smoke test of the scripts, not the issue's measurements)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the combined results as JSON to PATH",
    )
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    names = args.only or list(BENCHMARKS)
    rows: list[Row] = []
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="labkit-bench-results-") as tmp:
        for name in names:
            found, error = run_one(name, args.quick, Path(tmp) / f"{name}.json")
            rows += found
            if error:
                failures[name] = error
                rows.append(Row(name, "(benchmark failed)", error))
    info = common.machine()
    print("\n=== summary" + (" (--quick: small counts, not the issue's measurements)" if args.quick else ""))
    common.report(rows, info, args.json, {"failures": failures})
    missed = [r for r in rows if r.met is False]
    print(
        f"\n{sum(r.met is True for r in rows)} targets met, {len(missed)} missed"
        + (f", {len(failures)} benchmark(s) failed: {', '.join(failures)}" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
