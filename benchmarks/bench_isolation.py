"""What isolating containers costs: pod start and Service throughput per isolation tool, one run.

For each isolation mode (``LABKIT_ISOLATION``: ``none``, ``bubblewrap``, ``proot``; those that
work on this machine), the two benchmarks that measure it run one after another, each with
clusters of its own:

- ``bench_pods.py --only startup``: bare ``labkit/echo`` pods created one at a time, create →
  Running (p50 and p99), plus back-to-back pods and a Deployment;
- ``bench_services.py --backend web``: requests/s through the ClusterIP listener to a
  three-replica Deployment, on keep-alive connections, and straight to one pod's address.

The table puts the modes side by side, with each mode's figure as a ratio of ``none`` (the
runtime without isolation that labkit had before). The targets come from the issue: pod start
p50 ≤ 0.3 s and p99 ≤ 0.5 s one at a time; Service throughput to isolated pods ≥ 0.9 of the
unisolated figure.

labkit refuses ``none`` as root (a container would hold root over the machine), so as root the
whole comparison runs as an unprivileged user (``--user``, default 65534), as a learner on a
laptop or on Binder runs labkit. Its interpreter and this checkout must be readable by that
user. ``--as-root`` instead measures as root, without ``none``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import common
from common import Row

HERE = Path(__file__).resolve().parent
NONROOT_PYTHON = "/tmp/labkit-nonroot-venv/bin/python"  # the virtualenv .ci/nonroot makes
MODES = ("none", "bubblewrap", "proot")
START_P50_S = 0.3
START_P99_S = 0.5
THROUGHPUT_RATIO = 0.9
BATCHES = ("one at a time", "back to back", "deployment")  # bench_pods.py's startup batches
ROUTES = ("direct/keep-alive-8", "service/keep-alive-8", "direct/new-8", "service/new-8")
SERVICES_ARGS = [
    "--backend",
    "echo",
    "--connections",
    "8",
    "--latency-requests",
    "500",
    "--latency-new",
    "50",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=MODES,
        default=None,
        help="measure this isolation mode (repeatable; default: every one that works here)",
    )
    parser.add_argument(
        "--pods",
        type=common.bounded_int(5, 500),
        default=40,
        help="pods of each bare startup batch (default: 40)",
    )
    parser.add_argument(
        "--seconds",
        type=common.bounded_int(1, 30),
        default=3,
        help="length of each throughput run (default: 3)",
    )
    parser.add_argument(
        "--repeats",
        type=common.bounded_int(1, 10),
        default=3,
        help="rounds of throughput runs, the median shown (default: 3)",
    )
    parser.add_argument("--user", type=int, default=65534, help="uid to measure as when run as root")
    parser.add_argument(
        "--python",
        default=None,
        help="interpreter (with labkit installed) to measure with; as root for another user it must be "
        "one that user can run, e.g. the virtualenv .ci/nonroot makes (default: /tmp/labkit-nonroot-venv "
        "when root measures for another user, else this one)",
    )
    parser.add_argument("--as-root", action="store_true", help="as root, measure as root (without none)")
    common.add_common_args(parser, max_seconds=1800)
    return parser.parse_args(argv)


def works(mode: str, env: dict[str, str], args: argparse.Namespace) -> str | None:
    """None when ``mode`` can isolate here (asked as the measuring user), else why not."""
    probe = "from labkit.sandbox.isolation import detect; print(detect().describe())"
    done = subprocess.run(
        [*user_prefix(args), args.python, "-c", probe],
        env={**env, "LABKIT_ISOLATION": mode},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1]


def user_prefix(args: argparse.Namespace) -> list[str]:
    """``setpriv`` to the measuring user when root measures for an unprivileged one."""
    if os.geteuid() != 0 or args.as_root:
        return []
    uid = str(args.user)
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def run_one(
    script: str, extra: list[str], mode: str, args: argparse.Namespace, work: Path
) -> dict[str, Any] | None:
    """Run one benchmark script under ``mode``; its JSON results, or None when it failed."""
    out = work / f"{script}-{mode}.json"
    env = {**os.environ, "LABKIT_ISOLATION": mode, "TMPDIR": str(work), "HOME": str(work)}
    cmd = [*user_prefix(args), args.python, str(HERE / script), *extra, "--json", str(out)]
    print(f"==> {script} with LABKIT_ISOLATION={mode}", flush=True)
    done = subprocess.run(cmd, env=env, cwd=HERE, timeout=args.max_seconds, check=False)
    if done.returncode != 0 or not out.exists():
        print(f"    {script} failed under {mode} (exit {done.returncode})", flush=True)
        return None
    return json.loads(out.read_text())


def startup(result: dict[str, Any] | None, batch: str) -> dict[str, float] | None:
    """bench_pods.py's create → Running summary (seconds) of one startup batch."""
    with contextlib.suppress(KeyError, TypeError):
        return dict((result or {})["extra"]["startup"][batch]["latency_s"])
    return None


def rate(result: dict[str, Any] | None, route: str) -> float | None:
    """bench_services.py's median requests/s of one route and mode, for the echo backend."""
    with contextlib.suppress(KeyError, TypeError, ValueError):
        runs = sorted(r["rate"] for r in (result or {})["extra"]["echo"]["throughput"][route])
        return float(runs[len(runs) // 2])
    return None


def main(argv: list[str] | None = None) -> int:
    """Measure each mode and print the side-by-side table."""
    args = parse_args(argv)
    common.exit_on_sigterm()
    info = common.machine()
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-isolation-"))
    os.chmod(work, 0o777)  # the measuring user writes its homes and results here
    env = {**os.environ, "HOME": str(work)}
    if args.python is None:
        args.python = NONROOT_PYTHON if user_prefix(args) else sys.executable
    if not Path(args.python).exists():
        raise SystemExit(f"{args.python} does not exist: make it with `bash .ci/nonroot` or pass --python")
    try:
        as_root = os.geteuid() == 0 and not user_prefix(args)
        modes = args.mode or [m for m in MODES if not (m == "none" and as_root)]
        results: dict[str, dict[str, dict[str, Any] | None]] = {}
        for mode in modes:
            why = works(mode, env, args)
            if why is not None:
                print(f"==> {mode}: left out: {why}", flush=True)
                continue
            results[mode] = {
                "pods": run_one(
                    "bench_pods.py",
                    ["--only", "startup", "--pods", str(args.pods), "--replicas", "20", "--rounds", "1"],
                    mode,
                    args,
                    work,
                ),
                "services": run_one(
                    "bench_services.py",
                    [*SERVICES_ARGS, "--seconds", str(args.seconds), "--repeats", str(args.repeats)],
                    mode,
                    args,
                    work,
                ),
            }
        rows = compare(results)
        print(f"\nmeasured as uid {args.user if user_prefix(args) else os.geteuid()}")
        common.report(rows, info, args.json, {"modes": list(results), "raw": results})
        return 0 if results else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(results: dict[str, dict[str, dict[str, Any] | None]]) -> list[Row]:
    """Rows: each mode's figures, with the issue's targets, and throughput as a share of ``none``."""
    rows: list[Row] = []
    base = results.get("none")
    for mode, found in results.items():
        for batch in BATCHES:
            figures = startup(found["pods"], batch)
            metric = f"{mode}: pod start, {batch}: create → Running, p50 / p99"
            if figures is None:
                rows.append(Row("isolation", metric, "failed"))
                continue
            value = f"{figures['p50'] * 1000:.0f} / {figures['p99'] * 1000:.0f} ms (n={figures['n']:.0f})"
            if batch == "one at a time":
                met = figures["p50"] <= START_P50_S and figures["p99"] <= START_P99_S
                rows.append(
                    Row("isolation", metric, value, f"p50 ≤ {START_P50_S} s, p99 ≤ {START_P99_S} s", met)
                )
            else:
                rows.append(Row("isolation", metric, value))
        for route in ROUTES:
            found_rate = rate(found["services"], route)
            metric = f"{mode}: echo, {route.replace('/', ', ')}"
            if found_rate is None:
                rows.append(Row("isolation", metric, "failed"))
                continue
            value, target, met = f"{found_rate:,.0f} req/s", "", None
            base_rate = rate(base["services"], route) if base and mode != "none" else None
            if base_rate:
                share = found_rate / base_rate
                value += f" = {share:.2f} of none"
                if route.startswith("service/"):
                    target, met = f"≥ {THROUGHPUT_RATIO} of none", share >= THROUGHPUT_RATIO
            rows.append(Row("isolation", metric, value, target, met))
    return rows


if __name__ == "__main__":
    sys.exit(main())
