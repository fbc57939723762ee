"""Target 4: 50 concurrent watchers all see every event of a 1,000-object burst.

WATCHERS clients each open their own HTTPS connection and watch ConfigMaps in one
namespace from the list's resourceVersion (``watch=true``); a watcher counts as connected
once the answer's headers arrived, which the server sends only after it subscribed the
watch. When all are connected, WRITERS clients (each its own connection) create OBJECTS
ConfigMaps as fast as they can. Every watcher stamps each line as it reads it and parses
the lines afterwards, so its own parsing does not delay its reading.

Reported: whether each watcher saw an ADDED event for every object (and in increasing
resourceVersion order), the time from the first write to the last watcher having them
all, and the per-event lag from each create's acknowledgement (201) to each watcher
reading the event, over all watchers and events (also from the request's start, which
adds the create's own latency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import common
from common import Endpoint, Row

NAMESPACE = "watching"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
PREFIX = "burst-"


@dataclass
class Watcher:
    """One watch stream and the lines it read, each with the time it was read."""

    index: int
    expected: int
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    lines: list[tuple[float, bytes]] = field(default_factory=list)
    added: int = 0
    done_at: float | None = None

    async def run(self, ep: Endpoint, resource_version: str, deadline: float) -> None:
        """Watch until every expected ADDED event arrived or the deadline passed."""
        async with ep.session(timeout=None) as session:
            url = f"{PATH}?watch=true&resourceVersion={resource_version}"
            async with session.get(url) as response:
                if response.status != 200:
                    raise common.UnexpectedStatusError(f"watch {self.index}: {response.status}")
                self.connected.set()
                while self.added < self.expected:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        return
                    try:
                        line = await asyncio.wait_for(response.content.readline(), remaining)
                    except asyncio.TimeoutError:
                        return
                    if not line:
                        return
                    now = time.perf_counter()
                    self.lines.append((now, line))
                    if b'"ADDED"' in line[:20] and PREFIX.encode() in line:
                        self.added += 1
                        if self.added == self.expected:
                            self.done_at = now

    def events(self) -> list[tuple[float, str, str, int]]:
        """The parsed events: (time read, type, name, resourceVersion)."""
        parsed = []
        for t, line in self.lines:
            event = json.loads(line)
            meta = event["object"]["metadata"]
            parsed.append((t, event["type"], meta["name"], int(meta["resourceVersion"])))
        return parsed


@dataclass
class Writes:
    """When each create was sent and acknowledged."""

    sent: dict[str, float] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)


async def burst(ep: Endpoint, objects: int, writers: int) -> Writes:
    """Create ``objects`` ConfigMaps from ``writers`` concurrent clients, as fast as they can."""
    writes = Writes()
    names = iter(f"{PREFIX}{i:05d}" for i in range(objects))
    sessions = [ep.session() for _ in range(writers)]

    async def writer(session: aiohttp.ClientSession) -> None:
        for i, name in enumerate(names):
            writes.sent[name] = time.perf_counter()
            await common.call(session, "POST", PATH, common.configmap(name, i), expect=201)
            writes.acked[name] = time.perf_counter()

    try:
        for session in sessions:  # open each connection before the burst
            await common.call(session, "GET", f"/api/v1/namespaces/{NAMESPACE}")
        await asyncio.gather(*(writer(s) for s in sessions))
    finally:
        for session in sessions:
            await session.close()
    return writes


async def run(
    ep: Endpoint, watchers: int, objects: int, writers: int, max_seconds: float
) -> tuple[list[Watcher], Writes]:
    """Connect the watchers, then write the burst; return what each watcher saw."""
    async with ep.session() as session:
        await common.create_namespace(session, NAMESPACE)
        listing = json.loads(await common.call(session, "GET", PATH))
    rv = listing["metadata"]["resourceVersion"]
    deadline = time.perf_counter() + max_seconds
    streams = [Watcher(i, objects) for i in range(watchers)]
    tasks = [asyncio.create_task(w.run(ep, rv, deadline)) for w in streams]
    try:
        connected = asyncio.gather(*(w.connected.wait() for w in streams))
        await asyncio.wait_for(asyncio.shield(connected), 30)
        print(
            f"{watchers} watchers connected; writing {objects} ConfigMaps from {writers} writers", flush=True
        )
        writes = await burst(ep, objects, writers)
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return streams, writes


def analyse(streams: list[Watcher], writes: Writes, objects: int) -> tuple[list[Row], dict[str, Any]]:
    """Completeness, time to the last complete watcher, and per-event lag."""
    first_write = min(writes.sent.values())
    last_ack = max(writes.acked.values())
    complete = 0
    ordered = True
    lag_ack: list[float] = []
    lag_sent: list[float] = []
    for w in streams:
        added = {}
        rvs = []
        for t, kind, name, rv in w.events():
            rvs.append(rv)
            if kind == "ADDED" and name.startswith(PREFIX):
                added[name] = t
        ordered = ordered and rvs == sorted(rvs)
        complete += len(added) == objects and set(added) == set(writes.acked)
        lag_ack += [(t - writes.acked[n]) * 1000 for n, t in added.items() if n in writes.acked]
        lag_sent += [(t - writes.sent[n]) * 1000 for n, t in added.items() if n in writes.sent]
    done = [w.done_at for w in streams if w.done_at is not None]
    all_done = len(done) == len(streams)
    to_last = (max(done) - first_write) if all_done else float("nan")
    la, ls = common.summary(lag_ack), common.summary(lag_sent)
    print("  " + common.describe("lag from 201 to watcher", lag_ack))
    print("  " + common.describe("lag from request start to watcher", lag_sent))
    n = len(streams)
    rows = [
        Row(
            "watch",
            f"{n} watchers saw all {objects} ADDED events",
            f"{complete}/{n} (in rv order: {'yes' if ordered else 'NO'})",
            "all",
            complete == n and ordered,
        ),
        Row(
            "watch",
            "first write -> last watcher has everything",
            f"{to_last * 1000:.0f} ms (writes took {(last_ack - first_write) * 1000:.0f} ms, "
            f"{objects / (last_ack - first_write):.0f} creates/s)"
            if all_done
            else "never (deadline)",
        ),
        Row(
            "watch",
            "per-event lag from 201, p50 / p99",
            f"{la['p50']:.1f} / {la['p99']:.1f} ms (max {la['max']:.0f}; n={la['n']:.0f})",
        ),
        Row(
            "watch",
            "per-event lag from request start, p50 / p99",
            f"{ls['p50']:.1f} / {ls['p99']:.1f} ms (max {ls['max']:.0f})",
        ),
    ]
    raw = {
        "complete": complete,
        "ordered": ordered,
        "first_write_to_last_complete_s": to_last,
        "writes_s": last_ack - first_write,
        "lag_from_ack_ms": la,
        "lag_from_send_ms": ls,
    }
    return rows, raw


def main(argv: list[str] | None = None) -> int:
    """Run the watch benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--watchers",
        type=common.bounded_int(1, 200),
        default=50,
        help="concurrent watchers, each on its own connection (default: 50)",
    )
    parser.add_argument(
        "--objects",
        type=common.bounded_int(1, 10000),
        default=1000,
        help="ConfigMaps in the burst (default: 1000)",
    )
    parser.add_argument(
        "--writers", type=common.bounded_int(1, 32), default=4, help="concurrent writers (default: 4)"
    )
    common.add_common_args(parser, max_seconds=120)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    info = common.machine()
    with common.running_cluster() as (_, ep):
        streams, writes = asyncio.run(run(ep, args.watchers, args.objects, args.writers, args.max_seconds))
    rows, raw = analyse(streams, writes, args.objects)
    common.report(rows, info, args.json, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
