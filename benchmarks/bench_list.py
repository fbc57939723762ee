"""Target 3: listing 1,000 pods, as a plain list and as a Table (what ``kubectl get pods`` asks for).

It creates PODS realistic pods (labels, one container with ports, env and resources) in
one namespace from 8 concurrent clients, then lists them LISTS times each way on one
keep-alive HTTPS connection, timing each list from sending it to having read the whole
answer (the client's JSON parsing is not included; one answer of each is parsed to check
it holds every pod). It also times a few ``kubectl get pods`` end to end, for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import aiohttp
import common
from common import Endpoint, Home, Row

TARGET_MEDIAN_MS = 100.0
NAMESPACE = "listing"
PATH = f"/api/v1/namespaces/{NAMESPACE}/pods"
MODES = {"plain list": "application/json", "Table": common.TABLE_ACCEPT}


async def fill(ep: Endpoint, count: int, clients: int = 8) -> float:
    """Create the namespace and ``count`` pods; the seconds it took."""
    sessions = [ep.session() for _ in range(clients)]
    try:
        await common.create_namespace(sessions[0], NAMESPACE)
        indexes = iter(range(count))

        async def worker(session: aiohttp.ClientSession) -> None:
            for i in indexes:
                await common.call(session, "POST", PATH, common.realistic_pod(f"web-{i:04d}", i), expect=201)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(s) for s in sessions))
        return time.perf_counter() - t0
    finally:
        for session in sessions:
            await session.close()


def count_items(raw: bytes, mode: str) -> int:
    """How many pods an answer holds (items of a list, rows of a Table)."""
    doc = json.loads(raw)
    if mode == "Table":
        if doc.get("kind") != "Table":
            raise common.UnexpectedStatusError(f"asked for a Table, got a {doc.get('kind')}")
        return len(doc["rows"])
    return len(doc["items"])


async def measure(ep: Endpoint, lists: int, expected: int) -> dict[str, tuple[list[float], int]]:
    """For each mode: the list latencies in ms and the answer's size in bytes."""
    results = {}
    async with ep.session(timeout=60) as session:
        for mode, accept in MODES.items():
            raw = await common.call(session, "GET", PATH, accept=accept)  # warm-up, and the check
            found = count_items(raw, mode)
            if found != expected:
                raise common.UnexpectedStatusError(f"{mode}: {found} pods listed, {expected} created")
            times = []
            for _ in range(lists):
                t0 = time.perf_counter()
                raw = await common.call(session, "GET", PATH, accept=accept)
                times.append(common.elapsed_ms(t0))
            print("  " + common.describe(f"{mode} ({len(raw):,} bytes)", times), flush=True)
            results[mode] = (times, len(raw))
    return results


def kubectl_get(home: Home, runs: int) -> list[float]:
    """Seconds of ``kubectl get pods`` (Table, limit=500 as kubectl sends) end to end."""
    home.kubectl("get", "pods", "-n", NAMESPACE)  # discovery cache warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = home.kubectl("get", "pods", "-n", NAMESPACE, "--no-headers")
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl get pods failed: {done.stderr}")
    return times


def main(argv: list[str] | None = None) -> int:
    """Run the list benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pods",
        type=common.bounded_int(1, 5000),
        default=1000,
        help="pods to create and list (default: 1000)",
    )
    parser.add_argument(
        "--lists", type=common.bounded_int(1, 200), default=20, help="timed lists of each kind (default: 20)"
    )
    parser.add_argument(
        "--kubectl-runs",
        type=common.bounded_int(0, 20),
        default=5,
        help="timed `kubectl get pods` runs, for reference (default: 5)",
    )
    common.add_common_args(parser, max_seconds=300)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    info = common.machine()
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    with common.running_cluster() as (home, ep):
        seconds = asyncio.run(asyncio.wait_for(fill(ep, args.pods), args.max_seconds))
        print(f"created {args.pods} pods in {seconds:.2f} s ({args.pods / seconds:.0f} pods/s, 8 clients)")
        results = asyncio.run(asyncio.wait_for(measure(ep, args.lists, args.pods), args.max_seconds))
        kubectl_times = kubectl_get(home, args.kubectl_runs) if common.KUBECTL.exists() else []
    for mode, (times, size) in results.items():
        s = common.summary(times)
        rows.append(
            Row(
                "list",
                f"{args.pods} pods as {mode}: median (p90, max)",
                f"{s['p50']:.1f} ms ({s['p90']:.1f}, {s['max']:.1f}; n={len(times)}); {size / 1024:.0f} KiB",
                f"median <= {TARGET_MEDIAN_MS:.0f} ms",
                s["p50"] <= TARGET_MEDIAN_MS,
            )
        )
        raw[mode] = {"ms": times, "bytes": size}
    if kubectl_times:
        rows.append(
            Row(
                "list",
                f"`kubectl get pods` ({args.pods} pods) end to end, median",
                f"{statistics.median(kubectl_times) * 1000:.0f} ms (n={len(kubectl_times)})",
            )
        )
        raw["kubectl_s"] = kubectl_times
    rows.append(Row("list", f"create {args.pods} pods from 8 clients", f"{args.pods / seconds:.0f} pods/s"))
    common.report(rows, info, args.json, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
