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
MODES = ("none", "bubblewrap", "proot")
START_P50_S = 0.3
START_P99_S = 0.5
THROUGHPUT_RATIO = 0.9
# the rows of the two benchmarks shown side by side, by the start of their metric
PODS_METRICS = ("one at a time: create → Running", "back to back: create → Running")
SERVICE_METRICS = ("web: direct, pod", "web: Service")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        "--seconds", type=common.bounded_int(1, 30), default=3, help="length of each throughput run (default: 3)"
    )
    parser.add_argument(
        "--repeats",
        type=common.bounded_int(1, 10),
        default=3,
        help="rounds of throughput runs, the median shown (default: 3)",
    )
    parser.add_argument("--user", type=int, default=65534, help="uid to measure as when run as root")
    parser.add_argument("--as-root", action="store_true", help="as root, measure as root (without none)")
    common.add_common_args(parser, max_seconds=1800)
    return parser.parse_args(argv)


def works(mode: str, env: dict[str, str]) -> str | None:
    """None when ``mode`` can isolate here (asked in the environment the benchmark runs in), else why."""
    probe = "from labkit.sandbox.isolation import detect; print(detect().describe())"
    done = subprocess.run(
        [sys.executable, "-c", probe],
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
    cmd = [*user_prefix(args), sys.executable, str(HERE / script), *extra, "--json", str(out)]
    print(f"==> {script} with LABKIT_ISOLATION={mode}", flush=True)
    done = subprocess.run(cmd, env=env, cwd=HERE, timeout=args.max_seconds, check=False)
    if done.returncode != 0 or not out.exists():
        print(f"    {script} failed under {mode} (exit {done.returncode})", flush=True)
        return None
    return json.loads(out.read_text())


def pick(result: dict[str, Any] | None, starts: str) -> Row | None:
    """The first row whose metric starts with ``starts``."""
    for raw in (result or {}).get("rows", []):
        if str(raw["metric"]).startswith(starts):
            return Row(**raw)
    return None


def number(text: str, key: str) -> float | None:
    """The figure after ``key=`` (or the leading number when ``key`` is empty) in a value cell."""
    for word in text.replace(",", " ").split():
        if key and word.startswith(f"{key}="):
            word = word[len(key) + 1 :]
        elif key:
            continue
        digits = "".join(ch for ch in word if ch.isdigit() or ch == ".")
        with contextlib.suppress(ValueError):
            return float(digits)
    return None


def main(argv: list[str] | None = None) -> int:
    """Measure each mode and print the side-by-side table."""
    args = parse_args(argv)
    common.exit_on_sigterm()
    info = common.machine()
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-isolation-"))
    os.chmod(work, 0o777)  # the measuring user writes its homes and results here
    env = {**os.environ, "HOME": str(work)}
    try:
        modes = args.mode or [m for m in MODES if not (m == "none" and user_prefix(args) == [] and os.geteuid() == 0)]
        results: dict[str, dict[str, dict[str, Any] | None]] = {}
        for mode in modes:
            why = works(mode, env) if not user_prefix(args) else None
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
                    [
                        "--backend", "web", "--connections", "8", "--seconds", str(args.seconds),
                        "--repeats", str(args.repeats), "--latency-requests", "500", "--latency-new", "50",
                    ],  # fmt: skip
                    mode,
                    args,
                    work,
                ),
            }
        rows = compare(results)
        who = "as root" if not user_prefix(args) and os.geteuid() == 0 else f"as uid {os.geteuid() if not user_prefix(args) else args.user}"
        print(f"\nmeasured {who}")
        common.report(rows, info, args.json, {"modes": list(results), "raw": results})
        return 0 if results else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(results: dict[str, dict[str, dict[str, Any] | None]]) -> list[Row]:
    """Rows: each mode's figure for the chosen metrics, with the targets and ratios to ``none``."""
    rows: list[Row] = []
    base = results.get("none")
    for mode, found in results.items():
        for metric in PODS_METRICS:
            row = pick(found["pods"], metric)
            if row is None:
                rows.append(Row("isolation", f"{mode}: {metric}", "failed"))
                continue
            target, met = "", None
            if metric.startswith("one at a time"):
                p50, p99 = number(row.value, "p50"), number(row.value, "p99")
                target = f"p50 ≤ {START_P50_S} s, p99 ≤ {START_P99_S} s"
                met = p50 is not None and p99 is not None and p50 <= START_P50_S * 1000 and p99 <= START_P99_S * 1000
            rows.append(Row("isolation", f"{mode}: {row.metric}", row.value, target, met))
        for metric in SERVICE_METRICS:
            row = pick(found["services"], metric)
            if row is None:
                rows.append(Row("isolation", f"{mode}: {metric}", "failed"))
                continue
            rate = number(row.value, "")
            target, met, ratio = "", None, ""
            reference = pick(base["services"], metric) if base else None
            if reference is not None and rate is not None and mode != "none":
                base_rate = number(reference.value, "")
                if base_rate:
                    share = rate / base_rate
                    ratio = f" ({share:.2f} of none)"
                    if metric.endswith("Service"):
                        target, met = f"≥ {THROUGHPUT_RATIO} of none", share >= THROUGHPUT_RATIO
            rows.append(Row("isolation", f"{mode}: {row.metric}", f"{row.value}{ratio}", target, met))
    return rows


if __name__ == "__main__":
    sys.exit(main())
