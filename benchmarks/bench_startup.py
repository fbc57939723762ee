"""Target 1: from ``labkit cluster up`` to the first ``kubectl get nodes`` that succeeds.

Cold starts create a NEW cluster each time (a fresh LABKIT_HOME and HOME: certificates,
token, store and kubectl's discovery cache are all new). Restarts start an existing,
stopped cluster again (same home, so kubectl's discovery cache from the previous run is
there, as for a user who stopped and restarts). Each start is timed from launching
``python -m labkit cluster up`` to the first ``kubectl get nodes`` that exits 0, and split
into the ``up`` command alone and kubectl alone. Stopping and deleting are not timed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import common
from common import Home, Row

TARGET_S = 1.0
ANCHORS = "kind create cluster 12-17 s; kwok about 5 s"
KWOK_S = 5.0
KIND_S = (12.0, 17.0)


@dataclass
class Start:
    """One timed start, in seconds."""

    up: float
    kubectl: float
    kubectl_attempts: int

    @property
    def total(self) -> float:
        """From launching ``up`` to kubectl's first success."""
        return self.up + self.kubectl


def timed_start(home: Home, nodes: int | None, deadline: float) -> Start:
    """Run ``labkit cluster up`` then ``kubectl get nodes`` until it succeeds; time both."""
    args = ["up"] + (["--nodes", str(nodes)] if nodes else [])
    t0 = time.perf_counter()
    home.labkit(*args, timeout=max(1.0, deadline - time.monotonic()))
    t1 = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        done = home.kubectl("get", "nodes", timeout=max(1.0, deadline - time.monotonic()))
        if done.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"kubectl get nodes never succeeded:\n{done.stderr}")
        time.sleep(0.01)
    t2 = time.perf_counter()
    return Start(t1 - t0, t2 - t1, attempts)


def cold_starts(count: int, nodes: int | None, deadline: float) -> list[Start]:
    """``count`` starts of a brand-new cluster, each in its own fresh home."""
    starts = []
    for i in range(count):
        home = common.new_home()
        try:
            start = timed_start(home, nodes, deadline)
        finally:
            home.destroy()
        print(
            f"  cold {i + 1}/{count}: total {start.total:.3f} s (up {start.up:.3f} s, "
            f"kubectl {start.kubectl:.3f} s, {start.kubectl_attempts} attempt(s))",
            flush=True,
        )
        starts.append(start)
    return starts


def restarts(count: int, nodes: int | None, deadline: float) -> list[Start]:
    """``count`` starts of one existing cluster, stopped (state kept) between them."""
    home = common.new_home()
    starts = []
    try:
        timed_start(home, nodes, deadline)  # creates it; not counted
        home.labkit("down", timeout=30)
        for i in range(count):
            start = timed_start(home, nodes, deadline)
            home.labkit("down", timeout=30)
            print(
                f"  restart {i + 1}/{count}: total {start.total:.3f} s (up {start.up:.3f} s, "
                f"kubectl {start.kubectl:.3f} s, {start.kubectl_attempts} attempt(s))",
                flush=True,
            )
            starts.append(start)
    finally:
        home.destroy()
    return starts


def baseline(runs: int = 5) -> dict[str, float]:
    """Median seconds of the fixed costs under every start: a bare interpreter and labkit's CLI import."""
    commands = {
        "python -c pass": [common.PYTHON, "-c", "pass"],
        "python -m labkit --version": [common.PYTHON, "-m", "labkit", "--version"],
        "kubectl version --client": [str(common.KUBECTL), "version", "--client"],
    }
    env = common.new_home()
    try:
        medians = {}
        for label, cmd in commands.items():
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env.env(), capture_output=True, check=True, timeout=30)
                times.append(time.perf_counter() - t0)
            medians[label] = statistics.median(times)
        return medians
    finally:
        env.destroy()


def rows_for(label: str, starts: list[Start]) -> list[Row]:
    """Median (and p90, max) of total, up alone and kubectl alone."""
    totals = [s.total for s in starts]
    median = statistics.median(totals)
    ups = [s.up for s in starts]
    kubectls = [s.kubectl for s in starts]
    return [
        Row(
            "startup",
            f"{label}: up + first OK `kubectl get nodes`, median",
            f"{median:.3f} s (p90 {common.percentile(totals, 90):.3f}, max {max(totals):.3f}; "
            f"n={len(starts)})",
            f"<= {TARGET_S:.0f} s",
            median <= TARGET_S,
        ),
        Row(
            "startup",
            f"{label}: `labkit cluster up` alone, median",
            f"{statistics.median(ups):.3f} s (p90 {common.percentile(ups, 90):.3f})",
        ),
        Row(
            "startup",
            f"{label}: kubectl get nodes alone, median",
            f"{statistics.median(kubectls):.3f} s (p90 {common.percentile(kubectls, 90):.3f})",
        ),
        Row(
            "startup",
            f"{label}: vs anchors ({ANCHORS})",
            f"{KWOK_S / median:.1f}x faster than kwok, {KIND_S[0] / median:.0f}-{KIND_S[1] / median:.0f}x "
            "faster than kind",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the startup benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cold",
        type=common.bounded_int(0, 50),
        default=10,
        help="number of cold starts of a new cluster (default: 10)",
    )
    parser.add_argument(
        "--restarts",
        type=common.bounded_int(0, 50),
        default=10,
        help="number of restarts of an existing stopped cluster (default: 10)",
    )
    parser.add_argument(
        "--nodes",
        type=common.bounded_int(1, 100),
        default=None,
        help="nodes per cluster (default: labkit's default, 3)",
    )
    common.add_common_args(parser, max_seconds=600)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    if not common.KUBECTL.exists():
        parser.error(f"no kubectl next to the interpreter: {common.KUBECTL}")
    info = common.machine()
    deadline = time.monotonic() + args.max_seconds
    base = baseline()
    print("fixed costs (median of 5): " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in base.items()))
    rows: list[Row] = []
    extra: dict[str, object] = {"baseline_s": base}
    for label, runner, count in (("cold", cold_starts, args.cold), ("restart", restarts, args.restarts)):
        if count == 0:
            continue
        print(f"{label}: {count} runs", flush=True)
        starts = runner(count, args.nodes, deadline)
        rows += rows_for(label, starts)
        extra[label] = [{"up": s.up, "kubectl": s.kubectl, "attempts": s.kubectl_attempts} for s in starts]
    rows.append(
        Row(
            "startup",
            "fixed cost: `python -m labkit --version`, median",
            f"{base['python -m labkit --version']:.3f} s (bare `python -c pass` "
            f"{base['python -c pass']:.3f} s)",
        )
    )
    common.report(rows, info, args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
