"""Target 2: latency of a create and of a strategic-merge patch over HTTPS with keep-alive.

For each kind (ConfigMap and Pod by default) it creates COUNT objects one after another
on one keep-alive HTTPS connection, then patches each of them once
(``application/strategic-merge-patch+json``, a label change), timing every request from
sending it to having read the whole answer. Then it does the same with 8 concurrent
clients (8 connections) on new objects and reports throughput and latency under load.
A few untimed requests warm the connection up first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import common
from common import Endpoint, Row

TARGET_P99_MS = 50.0
NAMESPACE = "latency"
WARMUP = 5
MAKERS: dict[str, tuple[str, Callable[[str, int], dict[str, Any]]]] = {
    "configmaps": ("ConfigMap", common.configmap),
    "pods": ("Pod", common.realistic_pod),
}


async def create(session: aiohttp.ClientSession, plural: str, name: str, index: int) -> float:
    """POST one object; its latency in ms."""
    body = MAKERS[plural][1](name, index)
    t0 = time.perf_counter()
    await common.call(session, "POST", f"/api/v1/namespaces/{NAMESPACE}/{plural}", body, expect=201)
    return common.elapsed_ms(t0)


async def patch(session: aiohttp.ClientSession, plural: str, name: str, index: int) -> float:
    """Strategic-merge-patch one object's labels; its latency in ms."""
    body = {"metadata": {"labels": {"patched": f"p{index}"}, "annotations": {"labkit.dev/round": str(index)}}}
    t0 = time.perf_counter()
    await common.call(
        session,
        "PATCH",
        f"/api/v1/namespaces/{NAMESPACE}/{plural}/{name}",
        body,
        content_type=common.PATCH_TYPE,
    )
    return common.elapsed_ms(t0)


Op = Callable[[aiohttp.ClientSession, str, str, int], Any]


async def sequential(ep: Endpoint, op: Op, plural: str, prefix: str, count: int) -> list[float]:
    """``count`` requests one after another on one keep-alive connection."""
    async with ep.session(connections=1) as session:
        for _ in range(WARMUP):
            await common.call(session, "GET", f"/api/v1/namespaces/{NAMESPACE}")
        return [await op(session, plural, f"{prefix}-{i}", i) for i in range(count)]


async def concurrent(
    ep: Endpoint, op: Op, plural: str, prefix: str, count: int, clients: int
) -> tuple[list[float], float]:
    """``count`` requests from ``clients`` workers, each on its own connection: (latencies, seconds)."""
    sessions = [ep.session(connections=1) for _ in range(clients)]
    try:
        for session in sessions:
            await common.call(session, "GET", f"/api/v1/namespaces/{NAMESPACE}")
        indexes = iter(range(count))
        latencies: list[float] = []

        async def worker(session: aiohttp.ClientSession) -> None:
            for i in indexes:
                latencies.append(await op(session, plural, f"{prefix}-{i}", i))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(s) for s in sessions))
        return latencies, time.perf_counter() - t0
    finally:
        for session in sessions:
            await session.close()


async def run(ep: Endpoint, kinds: list[str], count: int, clients: int) -> tuple[list[Row], dict[str, Any]]:
    """Every measurement for every kind: the table rows and the raw latencies."""
    async with ep.session() as session:
        await common.create_namespace(session, NAMESPACE)
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    for plural in kinds:
        kind = MAKERS[plural][0]
        for verb, op in (("create", create), ("patch", patch)):
            print(f"{kind} {verb}: {count} sequential", flush=True)
            seq = await sequential(ep, op, plural, "seq", count)
            print("  " + common.describe(f"sequential {verb}", seq), flush=True)
            print(f"{kind} {verb}: {count} from {clients} concurrent clients", flush=True)
            conc, seconds = await concurrent(ep, op, plural, "conc", count, clients)
            print(
                "  " + common.describe(f"{clients} clients {verb}", conc) + f", {count / seconds:.0f} req/s",
                flush=True,
            )
            s = common.summary(seq)
            c = common.summary(conc)
            rows += [
                Row(
                    "latency",
                    f"{kind} {verb}, sequential p50 / p99",
                    f"{s['p50']:.2f} / {s['p99']:.2f} ms (max {s['max']:.1f}, n={count})",
                    f"p99 <= {TARGET_P99_MS:.0f} ms",
                    s["p99"] <= TARGET_P99_MS,
                ),
                Row(
                    "latency",
                    f"{kind} {verb}, {clients} clients: throughput",
                    f"{count / seconds:.0f} req/s (p50 {c['p50']:.1f} / p99 {c['p99']:.1f} ms)",
                ),
            ]
            raw[f"{plural}.{verb}"] = {"sequential_ms": seq, "concurrent_ms": conc, "concurrent_s": seconds}
    return rows, raw


def main(argv: list[str] | None = None) -> int:
    """Run the latency benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count",
        type=common.bounded_int(10, 5000),
        default=1000,
        help="requests of each kind, verb and mode (default: 1000)",
    )
    parser.add_argument(
        "--clients",
        type=common.bounded_int(1, 32),
        default=8,
        help="concurrent clients for the throughput run (default: 8)",
    )
    parser.add_argument(
        "--kinds",
        default="configmaps,pods",
        help=f"comma-separated resources to measure, of {', '.join(MAKERS)} (default: both)",
    )
    common.add_common_args(parser, max_seconds=600)
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in MAKERS]
    if unknown or not kinds:
        parser.error(f"--kinds takes {', '.join(MAKERS)}, not {args.kinds!r}")
    common.exit_on_sigterm()
    info = common.machine()
    with common.running_cluster() as (_, ep):
        rows, raw = asyncio.run(asyncio.wait_for(run(ep, kinds, args.count, args.clients), args.max_seconds))
    common.report(rows, info, args.json, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
