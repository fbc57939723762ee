"""Hardening: the API stays responsive while a Deployment asks for far more pods than fit.

A Deployment of ``--replicas`` (100,000 by default) busybox pods is created on a 3-node
cluster (110 pods per node). While its ReplicaSet creates pods and the scheduler reports
``FailedScheduling`` for those that do not fit, a probe sends one GET of a node and one
ConfigMap create every ``--interval`` seconds and times each. The report: the probes'
p50/p99/max, how many pods exist, run and wait; how many Events exist (aggregated and
capped, as upstream's event correlator does) and the daemon's memory at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import common
from common import Endpoint, Row

NAMESPACE = "storm"


def storm_deployment(replicas: int) -> dict[str, Any]:
    """A Deployment of sleeping busybox pods."""
    labels = {"app": "storm"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "storm"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}],
                },
            },
        },
    }


async def probe(session: aiohttp.ClientSession, index: int) -> tuple[float, float]:
    """One read and one write, each timed in ms."""
    t0 = time.perf_counter()
    await common.call(session, "GET", "/api/v1/nodes/bench-worker")
    read = common.elapsed_ms(t0)
    t0 = time.perf_counter()
    body = {"metadata": {"name": f"probe-{index}"}, "data": {"i": str(index)}}
    await common.call(session, "POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps", body, expect=201)
    return read, common.elapsed_ms(t0)


async def counts(session: aiohttp.ClientSession) -> dict[str, int]:
    """Pods by phase and the number of Events in the namespace."""
    pods = json.loads(await common.call(session, "GET", f"/api/v1/namespaces/{NAMESPACE}/pods"))["items"]
    events = json.loads(await common.call(session, "GET", f"/api/v1/namespaces/{NAMESPACE}/events"))["items"]
    running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
    unscheduled = sum(1 for p in pods if not p["spec"].get("nodeName"))
    return {
        "pods": len(pods),
        "running": running,
        "unscheduled": unscheduled,
        "events": len(events),
        "event_count_total": sum(int(e.get("count") or 1) for e in events),
        "failed_scheduling_events": sum(1 for e in events if e.get("reason") == "FailedScheduling"),
    }


def rss_mb(pid: int | None) -> float:
    """The daemon's resident memory in MB (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def run(
    ep: Endpoint, pid: int | None, replicas: int, seconds: float, interval: float
) -> tuple[list[Row], dict[str, Any]]:
    """Create the Deployment and probe the API for ``seconds``."""
    async with ep.session(connections=2) as session:
        await common.create_namespace(session, NAMESPACE)
        rss_start = rss_mb(pid)
        idle = [await probe(session, -i - 1) for i in range(20)]
        await common.call(
            session,
            "POST",
            f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
            storm_deployment(replicas),
            expect=201,
        )
        reads: list[float] = []
        writes: list[float] = []
        t_end = time.monotonic() + seconds
        index = 0
        timeline: list[dict[str, Any]] = []
        next_count = time.monotonic()
        while time.monotonic() < t_end:
            read, write = await probe(session, index)
            reads.append(read)
            writes.append(write)
            index += 1
            if time.monotonic() >= next_count:
                c = await counts(session)
                c["t"] = round(seconds - (t_end - time.monotonic()), 1)
                c["rss_mb"] = round(rss_mb(pid), 1)
                timeline.append(c)
                print(f"  t={c['t']:5.1f}s {c}", flush=True)
                next_count += 10
            await asyncio.sleep(interval)
        final = await counts(session)
        final["rss_mb"] = round(rss_mb(pid), 1)
    r, w, i = common.summary(reads), common.summary(writes), common.summary([a for a, _ in idle])
    rows = [
        Row("storm", "GET node, idle p50 / p99", f"{i['p50']:.1f} / {i['p99']:.1f} ms (n={i['n']:.0f})"),
        Row(
            "storm",
            f"GET node while {replicas} replicas scale, p50 / p99 / max",
            f"{r['p50']:.1f} / {r['p99']:.1f} / {r['max']:.1f} ms (n={r['n']:.0f})",
        ),
        Row(
            "storm",
            "ConfigMap create while scaling, p50 / p99 / max",
            f"{w['p50']:.1f} / {w['p99']:.1f} / {w['max']:.1f} ms (n={w['n']:.0f})",
        ),
        Row(
            "storm",
            f"pods after {seconds:.0f} s: total / running / unscheduled",
            f"{final['pods']} / {final['running']} / {final['unscheduled']}",
        ),
        Row("storm", "Events objects (sum of counts)", f"{final['events']} ({final['event_count_total']})"),
        Row("storm", "daemon RSS start / end", f"{rss_start:.0f} / {final['rss_mb']:.0f} MB"),
    ]
    return rows, {"reads_ms": reads, "writes_ms": writes, "timeline": timeline, "final": final}


def main(argv: list[str] | None = None) -> int:
    """Run the scale-storm benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replicas", type=common.bounded_int(1, 2**31 - 1), default=100_000)
    parser.add_argument("--seconds", type=common.bounded_int(5, 3600), default=60, help="probe this long")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between probes (default 0.05)")
    parser.add_argument("--quick", action="store_true", help="20 s of probing")
    common.add_common_args(parser, max_seconds=900)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    seconds = 20 if args.quick else args.seconds
    info = common.machine()
    print(common.describe_machine(info), flush=True)
    with common.running_cluster(nodes=3) as (home, ep):
        rows, raw = asyncio.run(run(ep, home.daemon_pid(), args.replicas, seconds, args.interval))
    common.report(rows, info, args.json, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
