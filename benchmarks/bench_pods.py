"""Part 2 targets: pod startup, 1,000 simulated pods on 100 nodes, and the daemon's memory.

Two clusters, each made with ``labkit cluster up`` in a temporary home and deleted at the end:

**startup** (``--nodes 3 --runtime process``). Every pod runs the built-in ``labkit/echo``
image, so the image is always present and nothing is pulled. One watch on the namespace's
pods stamps each event as it arrives. A pod counts as Running at the first event whose
``status.phase`` is Running. Three batches of pods, and every pod is deleted (and its process
gone) before the next batch:

- one at a time: PODS bare pods, each created only once the previous one is Running;
- back to back: PODS bare pods created one after another, each create waiting only for its 201;
- deployment: ROUNDS Deployments of REPLICAS replicas, one after another.

The verdict uses each pod's time from its creation to the arrival of its Running event.
For a bare pod, creation is when the client sent the create: that is earlier than the
creationTimestamp, so the figure is an upper bound. For a Deployment's pod, creation is the
stamp of the ReplicaSet's SuccessfulCreate event, recorded just after the pod was stored.
Events are named ``<object>.<hex nanoseconds>`` as upstream names them, and client and daemon
share the machine's clock. The server's own timestamps have whole seconds only (as
``metav1.Time``), so the table gives them as counts per whole second: startedAt of the Running
container, and the kubelet's status write (``managedFields`` time), each minus creationTimestamp.
The Scheduled and Started events split the time into scheduling, starting the process, and
reporting it.

**scale** (``--nodes 100 --runtime simulated``). A Deployment of SCALE_PODS replicas: the time
from sending the create until the watch has seen every pod Running, and until the Deployment
reports that many available. It is deleted, and then SCALE_PODS bare pods are created by
WRITERS concurrent clients, timed from the first create until all are Running.

**memory**. The daemon's VmRSS and VmHWM (peak) from ``/proc/<pid>/status``: idle after start
(once RSS stops growing), with ECHO_PODS real echo pods (with the processes' RSS and PSS
summed), and with the SCALE_PODS simulated pods.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import common
from common import Endpoint, Home, Row

STARTUP_P50_S = 0.3
STARTUP_P99_S = 0.5
UPSTREAM_SLO_P99_S = 5.0
STARTUP_TARGET = (
    f"p50 ≤ {STARTUP_P50_S} s, p99 ≤ {STARTUP_P99_S} s (upstream SLO p99 {UPSTREAM_SLO_P99_S:.0f} s)"
)
SCALE_RATE = 100.0  # pods/s: 1,000 pods in 10 s
SCALE_TARGET = "≥ 100 pods/s: 1,000 in ≤ 10 s (kube-scheduler 100/s, kwok ~20/s)"
IMAGE = "labkit/echo:v1"
POD_LIMIT_S = 60.0  # one pod that is not Running after this long stops the benchmark
SETTLE_LIMIT_S = 15.0  # idle RSS is read once stable, or after this long
MIB = 1024.0
STARTUP_NODES = 3
PHASES = ("startup", "scale")


class DeadlineError(Exception):
    """The benchmark ran out of its ``--max-seconds``."""


# -- time ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """A point in ``time.perf_counter()`` time after which the benchmark stops."""

    at: float

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - time.perf_counter()

    def check(self, what: str) -> float:
        """Seconds left; raise :class:`DeadlineError` naming ``what`` when none are."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineError(f"{what}: not done within --max-seconds")
        return left


def stamp_of(event_name: str) -> float | None:
    """The wall time in an event's name (``<object>.<hex nanoseconds>``), in seconds."""
    try:
        return int(event_name.rsplit(".", 1)[1], 16) / 1e9
    except (IndexError, ValueError):
        return None


def epoch(timestamp: str | None) -> float | None:
    """An RFC 3339 timestamp (whole seconds, ``Z``) as seconds since the epoch."""
    if not timestamp:
        return None
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


# -- objects -------------------------------------------------------------------------------


def echo_container() -> dict[str, Any]:
    """The echo server with one port, as a learner would write it."""
    return {
        "name": "web",
        "image": IMAGE,
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
    }


def echo_pod(name: str) -> dict[str, Any]:
    """A bare pod running the echo server."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [echo_container()]},
    }


def echo_deployment(name: str, replicas: int) -> dict[str, Any]:
    """A Deployment of the echo server."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [echo_container()]}},
        },
    }


# -- watching ------------------------------------------------------------------------------


class Watch:
    """One watch stream on a collection, from the list's resourceVersion, handing every event
    to its tracker as it arrives. It reconnects from the last resourceVersion if the server
    ends the stream."""

    def __init__(self, ep: Endpoint, path: str, tracker: Tracker) -> None:
        self.ep = ep
        self.path = path
        self.tracker = tracker
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watch:
        async with self.ep.session() as session:
            listing = json.loads(await common.call(session, "GET", self.path))
        self._task = asyncio.create_task(self._run(listing["metadata"]["resourceVersion"]))
        self._task.add_done_callback(self._ended)
        await asyncio.wait_for(asyncio.shield(self.connected.wait()), 30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.tracker.fail(task.exception())
            self.connected.set()

    async def _run(self, rv: str) -> None:
        async with self.ep.session(timeout=None) as session:
            while True:
                url = f"{self.path}?watch=true&resourceVersion={rv}"
                async with session.get(url) as response:
                    if response.status != 200:
                        raise common.UnexpectedStatusError(f"watch {self.path}: {response.status}")
                    self.connected.set()
                    async for line in response.content:
                        now, wall = time.perf_counter(), time.time()
                        event = json.loads(line)
                        obj = event["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            self.tracker.handle(event["type"], obj, now, wall)


class Tracker:
    """What a watch has shown so far; waiters are woken by every event."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.error: BaseException | None = None

    def fail(self, error: BaseException | None) -> None:
        """The watch broke: wake the waiters, who raise."""
        self.error = error
        self._changed.set()

    def changed(self) -> None:
        """Wake the waiters."""
        self._changed.set()

    def handle(self, kind: str, obj: dict[str, Any], t: float, wall: float) -> None:
        """Record one event: its type, object, and perf_counter and wall times of arrival."""
        raise NotImplementedError

    async def until(self, done: Callable[[], bool], deadline: Deadline, what: str) -> float:
        """Wait until ``done()`` holds; the perf_counter time it was first seen to."""
        while not done():
            if self.error is not None:
                raise RuntimeError(f"{what}: the watch failed: {self.error!r}")
            left = deadline.check(what)
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
        return time.perf_counter()


@dataclass
class PodSeen:
    """One pod as the client saw it: perf_counter times of its events, and its create request."""

    name: str
    added: float
    added_wall: float
    scheduled: float | None = None
    running: float | None = None
    running_wall: float | None = None
    running_obj: dict[str, Any] | None = None
    deleted: float | None = None
    last: dict[str, Any] = field(default_factory=dict)
    sent: float | None = None  # the client's create request (bare pods only)
    sent_wall: float | None = None
    acked: float | None = None


class PodTracker(Tracker):
    """Pods of one namespace, by UID, with running totals."""

    def __init__(self) -> None:
        super().__init__()
        self.pods: dict[str, PodSeen] = {}
        self.by_name: dict[str, str] = {}
        self.present = 0
        self.scheduled = 0
        self.running = 0

    def _entry(self, uid: str, name: str, t: float, wall: float) -> PodSeen:
        seen = self.pods.get(uid)
        if seen is None:
            seen = self.pods[uid] = PodSeen(name, t, wall)
            self.by_name[name] = uid
            self.present += 1
        return seen

    def handle(self, kind: str, obj: dict[str, Any], t: float, wall: float) -> None:
        """Record one pod event."""
        meta = obj["metadata"]
        seen = self._entry(meta["uid"], meta["name"], t, wall)
        seen.last = obj
        if kind == "ADDED":  # the entry may come from the create's 201, which can arrive first
            seen.added, seen.added_wall = t, wall
        if kind == "DELETED":
            if seen.deleted is None:
                seen.deleted = t
                self.present -= 1
        elif seen.deleted is None:
            if seen.scheduled is None and obj.get("spec", {}).get("nodeName"):
                seen.scheduled = t
                self.scheduled += 1
            if seen.running is None and (obj.get("status") or {}).get("phase") == "Running":
                seen.running, seen.running_wall, seen.running_obj = t, wall, obj
                self.running += 1
        self.changed()

    def reset(self) -> None:
        """Forget every pod (between batches, once all are gone)."""
        if self.present:
            raise RuntimeError(f"{self.present} pods are still there")
        self.pods.clear()
        self.by_name.clear()
        self.scheduled = self.running = 0

    def note_create(self, uid: str, name: str, sent: float, sent_wall: float, acked: float) -> None:
        """The client's create request for a pod (its 201 may come before or after ADDED)."""
        seen = self._entry(uid, name, acked, time.time())
        seen.sent, seen.sent_wall, seen.acked = sent, sent_wall, acked

    def is_running(self, name: str) -> bool:
        """Whether the pod called ``name`` has been seen Running."""
        uid = self.by_name.get(name)
        return uid is not None and self.pods[uid].running is not None

    def describe(self, name: str) -> str:
        """The pod's last status, for an error message."""
        uid = self.by_name.get(name)
        if uid is None:
            return "never seen on the watch"
        return json.dumps(self.pods[uid].last.get("status"))[:600]


class DeploymentTracker(Tracker):
    """One Deployment's available replicas, and when it first reached ``target``."""

    def __init__(self, name: str, target: int) -> None:
        super().__init__()
        self.name = name
        self.target = target
        self.available = 0
        self.reached: float | None = None

    def handle(self, kind: str, obj: dict[str, Any], t: float, wall: float) -> None:
        """Record one Deployment event."""
        if obj["metadata"]["name"] != self.name or kind == "DELETED":
            return
        self.available = int((obj.get("status") or {}).get("availableReplicas") or 0)
        if self.reached is None and self.available >= self.target:
            self.reached = t
        self.changed()


# -- memory --------------------------------------------------------------------------------


def status_kib(pid: int, *keys: str) -> dict[str, int]:
    """Fields of ``/proc/<pid>/status`` given in kB (VmRSS, VmHWM)."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            found[key] = int(value.split()[0])
    return found


def pss_kib(pid: int) -> int:
    """The process's proportional set size (shared pages split among their users)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the pods' processes, for the daemon)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Memory:
    """The daemon's memory at one moment, and its descendants' (the pods' processes), in KiB."""

    label: str
    rss: int
    hwm: int
    processes: int
    processes_rss: int
    processes_pss: int

    def row(self, benchmark: str) -> Row:
        """The measurement as a table row."""
        value = f"RSS {self.rss / MIB:.1f} MiB (peak VmHWM {self.hwm / MIB:.1f} MiB)"
        return Row(benchmark, f"daemon memory, {self.label}", value)


def measure_memory(pid: int, label: str) -> Memory:
    """Read the daemon's VmRSS and VmHWM, and its descendants' summed RSS and PSS."""
    own = status_kib(pid, "VmRSS", "VmHWM")
    rss = pss = count = 0
    for child in descendants(pid):
        with contextlib.suppress(OSError, KeyError):
            rss += status_kib(child, "VmRSS")["VmRSS"]
            pss += pss_kib(child)
            count += 1
    return Memory(label, own["VmRSS"], own["VmHWM"], count, rss, pss)


async def settled_memory(pid: int, label: str) -> Memory:
    """The memory once the daemon's and its pods' RSS stopped growing for a second (the API
    models load in a thread after start; pods' processes import their modules), or after
    :data:`SETTLE_LIMIT_S`."""
    end = time.perf_counter() + SETTLE_LIMIT_S
    last = measure_memory(pid, label)
    while time.perf_counter() < end:
        await asyncio.sleep(1.0)
        now = measure_memory(pid, label)
        if abs(now.rss + now.processes_rss - last.rss - last.processes_rss) < 256:
            return now
        last = now
    return last


def daemon_pid(home: Home) -> int:
    """The cluster's daemon."""
    pid = home.daemon_pid()
    if pid is None:
        raise RuntimeError("the daemon wrote no pid file")
    return pid


# -- clusters ------------------------------------------------------------------------------


@contextlib.contextmanager
def cluster(nodes: int, runtime: str, deadline: Deadline) -> Iterator[tuple[Home, Endpoint]]:
    """A new cluster with ``nodes`` nodes and the given runtime; deleted afterwards."""
    home = common.new_home()
    try:
        up_timeout = max(10.0, min(120.0, deadline.check("cluster up")))
        t0 = time.perf_counter()
        home.labkit(
            "up",
            "--nodes",
            str(nodes),
            "--runtime",
            runtime,
            "--timeout",
            str(up_timeout),
            timeout=up_timeout,
        )
        print(f"cluster up: {nodes} nodes, {runtime} runtime ({time.perf_counter() - t0:.1f} s)", flush=True)
        yield home, common.read_kubeconfig(home.kubeconfig)
    finally:
        home.destroy()


async def create_pods(
    ep: Endpoint, namespace: str, names: list[str], writers: int, tracker: PodTracker
) -> None:
    """Create bare echo pods from ``writers`` concurrent clients, each create after the previous
    one's 201, noting each request with the tracker."""
    todo = iter(names)
    path = f"/api/v1/namespaces/{namespace}/pods"

    async def writer(session: aiohttp.ClientSession) -> None:
        for name in todo:
            await create_pod(session, path, name, tracker)

    sessions = [ep.session() for _ in range(writers)]
    try:
        for session in sessions:  # open each connection first
            await common.call(session, "GET", f"/api/v1/namespaces/{namespace}")
        await asyncio.gather(*(writer(s) for s in sessions))
    finally:
        for session in sessions:
            await session.close()


async def create_pod(session: aiohttp.ClientSession, path: str, name: str, tracker: PodTracker) -> None:
    """Create one bare echo pod and note when it was sent and acknowledged."""
    sent, sent_wall = time.perf_counter(), time.time()
    raw = await common.call(session, "POST", path, echo_pod(name), expect=201)
    acked = time.perf_counter()
    tracker.note_create(json.loads(raw)["metadata"]["uid"], name, sent, sent_wall, acked)


async def delete_all(
    session: aiohttp.ClientSession, namespace: str, tracker: PodTracker, pid: int, deadline: Deadline
) -> float:
    """Delete every pod of the namespace (default grace), wait until all are gone and no pod
    process is left; the seconds it took."""
    t0 = time.perf_counter()
    await common.call(session, "DELETE", f"/api/v1/namespaces/{namespace}/pods")
    await tracker.until(lambda: tracker.present == 0, deadline, "deleting the pods")
    await processes_gone(pid, deadline)
    return time.perf_counter() - t0


async def delete_deployment(
    session: aiohttp.ClientSession,
    namespace: str,
    name: str,
    tracker: PodTracker,
    pid: int,
    deadline: Deadline,
) -> float:
    """Delete a Deployment in the background mode and wait until its pods (and their processes)
    are gone; the seconds it took."""
    t0 = time.perf_counter()
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    await common.call(session, "DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", body)
    await tracker.until(lambda: tracker.present == 0, deadline, f"deleting deployment {name}")
    await processes_gone(pid, deadline)
    return time.perf_counter() - t0


async def processes_gone(pid: int, deadline: Deadline) -> None:
    """Wait until the daemon has no pod process left."""
    while descendants(pid):
        deadline.check("waiting for the pods' processes to end")
        await asyncio.sleep(0.05)


# -- startup -------------------------------------------------------------------------------


@dataclass
class Batch:
    """The pods of one startup batch, and where each one's creation time comes from."""

    name: str
    pods: list[PodSeen]
    reference: dict[str, float]  # pod name -> wall time of its creation (see the module doc)
    stamps: dict[tuple[str, str], float]  # (pod name, event reason) -> wall time of the event


async def event_stamps(session: aiohttp.ClientSession, namespace: str) -> dict[tuple[str, str], float]:
    """(pod name, reason) -> wall time, from the namespace's events; a ReplicaSet's
    SuccessfulCreate counts for the pod its message names."""
    listing = json.loads(await common.call(session, "GET", f"/api/v1/namespaces/{namespace}/events"))
    stamps: dict[tuple[str, str], float] = {}
    for event in listing["items"]:
        stamp = stamp_of(event["metadata"]["name"])
        if stamp is None:
            continue
        reason = event.get("reason", "")
        pod = event.get("involvedObject", {}).get("name", "")
        if reason == "SuccessfulCreate":
            pod = event.get("message", "").removeprefix("Created pod: ")
        stamps.setdefault((pod, reason), stamp)
    return stamps


async def one_at_a_time(
    ep: Endpoint, namespace: str, count: int, tracker: PodTracker, deadline: Deadline
) -> None:
    """Create ``count`` bare pods, each once the previous one is Running."""
    path = f"/api/v1/namespaces/{namespace}/pods"
    async with ep.session() as session:
        for i in range(count):
            name = f"single-{i:04d}"
            await create_pod(session, path, name, tracker)
            limit = Deadline(min(deadline.at, time.perf_counter() + POD_LIMIT_S))
            try:
                await tracker.until(lambda n=name: tracker.is_running(n), limit, f"pod {name} Running")
            except DeadlineError:
                if deadline.remaining() <= 0:
                    raise
                raise RuntimeError(
                    f"pod {name} not Running after {POD_LIMIT_S:.0f} s: {tracker.describe(name)}"
                ) from None


async def back_to_back(
    ep: Endpoint, namespace: str, count: int, tracker: PodTracker, deadline: Deadline
) -> float:
    """Create ``count`` bare pods one after another; wait until all are Running. The creates'
    duration."""
    t0 = time.perf_counter()
    await create_pods(ep, namespace, [f"burst-{i:04d}" for i in range(count)], 1, tracker)
    took = time.perf_counter() - t0
    await tracker.until(lambda: tracker.running >= count, deadline, f"{count} pods Running")
    return took


# -- startup: analysis ---------------------------------------------------------------------


def kubelet_write_time(pod: dict[str, Any]) -> float | None:
    """When the kubelet last wrote the pod, from its managedFields entry (whole seconds)."""
    times = [
        epoch(e.get("time"))
        for e in pod["metadata"].get("managedFields") or []
        if e.get("manager") == "kubelet"
    ]
    found = [t for t in times if t is not None]
    return max(found) if found else None


def started_at(pod: dict[str, Any]) -> float | None:
    """The latest startedAt of the pod's running containers (whole seconds)."""
    found = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        t = epoch((status.get("state") or {}).get("running", {}).get("startedAt"))
        if t is not None:
            found.append(t)
    return max(found) if found else None


def whole_seconds(counts: Counter[int]) -> str:
    """``0 s: 97, 1 s: 3``."""
    return ", ".join(f"{s} s: {n}" for s, n in sorted(counts.items())) or "none"


def ms_pair(values: list[float]) -> str:
    """p50 / p99 of seconds, in milliseconds."""
    if not values:
        return "n/a"
    return f"{common.percentile(values, 50) * 1000:.0f} / {common.percentile(values, 99) * 1000:.0f} ms"


@dataclass
class StartupFigures:
    """The per-pod figures of one batch, in seconds."""

    latency: list[float] = field(default_factory=list)  # creation -> Running seen
    added_to_running: list[float] = field(default_factory=list)
    to_scheduled: list[float] = field(default_factory=list)
    to_started: list[float] = field(default_factory=list)
    to_seen: list[float] = field(default_factory=list)
    seen_minus_timestamp: list[float] = field(default_factory=list)
    started_whole: Counter[int] = field(default_factory=Counter)
    written_whole: Counter[int] = field(default_factory=Counter)
    no_create_event: int = 0


def reference_time(pod: PodSeen, stamps: dict[tuple[str, str], float], figures: StartupFigures) -> float:
    """When the pod was created: the client's send, else the SuccessfulCreate event, else the
    arrival of its ADDED event (counted, as it is late by the watch's lag)."""
    if pod.sent_wall is not None:
        return pod.sent_wall
    stamp = stamps.get((pod.name, "SuccessfulCreate"))
    if stamp is None:
        figures.no_create_event += 1
        return pod.added_wall
    return stamp


def startup_figures(pods: list[PodSeen], stamps: dict[tuple[str, str], float]) -> StartupFigures:
    """Every figure of a batch's pods (each must have been seen Running)."""
    figures = StartupFigures()
    for pod in pods:
        if pod.running is None or pod.running_wall is None or pod.running_obj is None:
            raise RuntimeError(f"pod {pod.name} was never seen Running")
        ref = reference_time(pod, stamps, figures)
        figures.latency.append(pod.running_wall - ref)
        figures.added_to_running.append(pod.running - pod.added)
        scheduled, started = stamps.get((pod.name, "Scheduled")), stamps.get((pod.name, "Started"))
        if scheduled is not None and started is not None:
            figures.to_scheduled.append(scheduled - ref)
            figures.to_started.append(started - scheduled)
            figures.to_seen.append(pod.running_wall - started)
        created = epoch(pod.running_obj["metadata"].get("creationTimestamp"))
        if created is None:
            continue
        figures.seen_minus_timestamp.append(pod.running_wall - created)
        for counts, t in (
            (figures.started_whole, started_at(pod.running_obj)),
            (figures.written_whole, kubelet_write_time(pod.running_obj)),
        ):
            if t is not None:
                counts[round(t - created)] += 1
    return figures


def startup_rows(label: str, figures: StartupFigures) -> list[Row]:
    """The table rows of one batch."""
    s = common.summary(figures.latency)
    met = s["p50"] <= STARTUP_P50_S and s["p99"] <= STARTUP_P99_S
    reference = "create sent" if label != "deployment" else "SuccessfulCreate event"
    late = f"; {figures.no_create_event} without event" if figures.no_create_event else ""
    return [
        Row(
            "pods",
            f"startup, {label}: {reference} → Running seen, p50 / p99",
            f"{s['p50'] * 1000:.0f} / {s['p99'] * 1000:.0f} ms "
            f"(max {s['max'] * 1000:.0f}; n={s['n']:.0f}{late})",
            STARTUP_TARGET,
            met,
        ),
        Row(
            "pods",
            f"startup, {label}: stages p50 / p99",
            f"→ Scheduled {ms_pair(figures.to_scheduled)}; → process Started {ms_pair(figures.to_started)}; "
            f"→ Running seen {ms_pair(figures.to_seen)}; "
            f"ADDED seen → Running seen {ms_pair(figures.added_to_running)}",
        ),
        Row(
            "pods",
            f"startup, {label}: server clock (whole seconds), minus creationTimestamp",
            f"startedAt {whole_seconds(figures.started_whole)}; kubelet status write "
            f"{whole_seconds(figures.written_whole)}",
        ),
        Row(
            "pods",
            f"startup, {label}: Running seen minus creationTimestamp (truncated: adds 0 to 1 s)",
            ms_pair(figures.seen_minus_timestamp),
        ),
    ]


def startup_raw(figures: StartupFigures) -> dict[str, Any]:
    """A batch's figures for the JSON output."""
    return {
        "latency_s": common.summary(figures.latency),
        "added_to_running_s": common.summary(figures.added_to_running),
        "stages_s": {
            "to_scheduled": figures.to_scheduled and common.summary(figures.to_scheduled),
            "to_started": figures.to_started and common.summary(figures.to_started),
            "to_seen": figures.to_seen and common.summary(figures.to_seen),
        },
        "started_at_minus_creation_whole_s": dict(figures.started_whole),
        "kubelet_write_minus_creation_whole_s": dict(figures.written_whole),
        "latencies_s": figures.latency,
    }


async def finish_batch(
    session: aiohttp.ClientSession,
    namespace: str,
    label: str,
    pods: list[PodSeen],
    rows: list[Row],
    raw: dict[str, Any],
) -> None:
    """Analyse a batch (its events are read now) and add its rows."""
    figures = startup_figures(pods, await event_stamps(session, namespace))
    print(
        "  " + common.describe(f"{label}: creation → Running seen", [x * 1000 for x in figures.latency]),
        flush=True,
    )
    rows += startup_rows(label, figures)
    raw[label] = startup_raw(figures)


# -- startup: the phase --------------------------------------------------------------------


async def startup_phase(
    home: Home,
    ep: Endpoint,
    args: argparse.Namespace,
    deadline: Deadline,
    rows: list[Row],
    raw: dict[str, Any],
) -> None:
    """The process-runtime cluster: idle memory, memory with echo pods, then the startup batches."""
    pid = daemon_pid(home)
    namespace = "startup"
    memory = await settled_memory(pid, f"idle after start ({STARTUP_NODES} nodes, process runtime)")
    rows.append(memory.row("pods"))
    raw["memory"] = [vars(memory)]
    tracker = PodTracker()
    async with ep.session() as session:
        await common.create_namespace(session, namespace)
        async with Watch(ep, f"/api/v1/namespaces/{namespace}/pods", tracker):
            await echo_memory(ep, session, namespace, pid, args.echo_pods, tracker, deadline, rows, raw)

            print(f"startup: {args.pods} pods one at a time", flush=True)
            await one_at_a_time(ep, namespace, args.pods, tracker, deadline)
            await finish_batch(session, namespace, "one at a time", list(tracker.pods.values()), rows, raw)
            await delete_all(session, namespace, tracker, pid, deadline)
            tracker.reset()

            print(f"startup: {args.pods} pods back to back", flush=True)
            creates = await back_to_back(ep, namespace, args.pods, tracker, deadline)
            print(f"  {args.pods} creates took {creates:.2f} s", flush=True)
            await finish_batch(session, namespace, "back to back", list(tracker.pods.values()), rows, raw)
            await delete_all(session, namespace, tracker, pid, deadline)
            tracker.reset()

            pods = await deployment_rounds(session, namespace, args, tracker, pid, deadline)
            await finish_batch(session, namespace, "deployment", pods, rows, raw)
    memory = measure_memory(pid, "after the startup batches")
    rows.append(memory.row("pods"))
    raw["memory"].append(vars(memory))


async def echo_memory(
    ep: Endpoint,
    session: aiohttp.ClientSession,
    namespace: str,
    pid: int,
    count: int,
    tracker: PodTracker,
    deadline: Deadline,
    rows: list[Row],
    raw: dict[str, Any],
) -> None:
    """The daemon's memory with ``count`` echo pods Running, and their processes' summed RSS
    and PSS; the pods are deleted afterwards."""
    print(f"memory: {count} echo pods", flush=True)
    await create_pods(ep, namespace, [f"memory-{i:03d}" for i in range(count)], 1, tracker)
    await tracker.until(lambda: tracker.running >= count, deadline, f"{count} echo pods Running")
    memory = await settled_memory(pid, f"with {count} echo pods Running (process runtime)")
    rows.append(memory.row("pods"))
    each = memory.processes_rss / max(memory.processes, 1) / MIB
    rows.append(
        Row(
            "pods",
            f"memory of the {count} echo pods' processes, summed",
            f"RSS {memory.processes_rss / MIB:.1f} MiB ({each:.1f} MiB each), "
            f"PSS {memory.processes_pss / MIB:.1f} MiB; {memory.processes} processes",
        )
    )
    raw["memory"].append(vars(memory))
    await delete_all(session, namespace, tracker, pid, deadline)
    tracker.reset()


async def deployment_rounds(
    session: aiohttp.ClientSession,
    namespace: str,
    args: argparse.Namespace,
    tracker: PodTracker,
    pid: int,
    deadline: Deadline,
) -> list[PodSeen]:
    """ROUNDS Deployments of REPLICAS echo pods, one after another, each deleted (and its pods
    gone) before the next; every pod seen."""
    pods: list[PodSeen] = []
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    for round_ in range(1, args.rounds + 1):
        name = f"web-{round_}"
        print(f"startup: deployment {name} with {args.replicas} replicas", flush=True)
        t0 = time.perf_counter()
        await common.call(session, "POST", path, echo_deployment(name, args.replicas), expect=201)
        await tracker.until(lambda: tracker.running >= args.replicas, deadline, f"{name}: all pods Running")
        print(f"  all {args.replicas} Running after {time.perf_counter() - t0:.2f} s", flush=True)
        pods += tracker.pods.values()
        await delete_deployment(session, namespace, name, tracker, pid, deadline)
        tracker.reset()
    return pods


# -- scale ---------------------------------------------------------------------------------


async def scale_phase(
    home: Home,
    ep: Endpoint,
    args: argparse.Namespace,
    deadline: Deadline,
    rows: list[Row],
    raw: dict[str, Any],
) -> None:
    """The simulated cluster: idle memory, a Deployment of SCALE_PODS, then as many bare pods."""
    pid = daemon_pid(home)
    namespace = "scale"
    memory = await settled_memory(pid, f"idle after start ({args.scale_nodes} nodes, simulated runtime)")
    rows.append(memory.row("pods"))
    raw["memory"] = [vars(memory)]
    pods = PodTracker()
    deployment = DeploymentTracker("scale", args.scale_pods)
    async with ep.session() as session:
        await common.create_namespace(session, namespace)
        async with (
            Watch(ep, f"/api/v1/namespaces/{namespace}/pods", pods),
            Watch(ep, f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment),
        ):
            await scale_deployment(session, namespace, args.scale_pods, pods, deployment, deadline, rows, raw)
            memory = measure_memory(pid, f"with {args.scale_pods} simulated pods (Deployment)")
            rows.append(memory.row("pods"))
            raw["memory"].append(vars(memory))
            took = await delete_deployment(session, namespace, "scale", pods, pid, deadline)
            rows.append(
                Row(
                    "pods", f"scale: delete the Deployment → all {args.scale_pods} pods gone", f"{took:.2f} s"
                )
            )
            pods.reset()

            await scale_bare(ep, namespace, args.scale_pods, args.writers, pods, deadline, rows, raw)
            memory = measure_memory(pid, f"with {args.scale_pods} simulated bare pods")
            rows.append(memory.row("pods"))
            raw["memory"].append(vars(memory))
            took = await delete_all(session, namespace, pods, pid, deadline)
            rows.append(Row("pods", f"scale: delete {args.scale_pods} bare pods → all gone", f"{took:.2f} s"))


def scale_row(label: str, count: int, took: float | None, detail: str) -> Row:
    """The verdict row of a scale run: the time until all pods were Running, as a rate."""
    metric = f"scale: {label} → all {count} Running (watch)"
    if took is None:
        return Row("pods", metric, f"never ({detail})", SCALE_TARGET, False)
    rate = count / took
    return Row(
        "pods", metric, f"{took:.2f} s = {rate:.0f} pods/s ({detail})", SCALE_TARGET, rate >= SCALE_RATE
    )


def milestones(pods: PodTracker, t0: float) -> str:
    """When the last pod was seen added, scheduled and Running, from ``t0``."""
    seen = list(pods.pods.values())
    parts = []
    for label, times in (
        ("all created", [p.added for p in seen]),
        ("all scheduled", [p.scheduled for p in seen]),
        ("all Running", [p.running for p in seen]),
    ):
        if times and all(t is not None for t in times):
            parts.append(f"{label} at {max(t for t in times if t is not None) - t0:.2f} s")
    return ", ".join(parts)


async def scale_deployment(
    session: aiohttp.ClientSession,
    namespace: str,
    count: int,
    pods: PodTracker,
    deployment: DeploymentTracker,
    deadline: Deadline,
    rows: list[Row],
    raw: dict[str, Any],
) -> None:
    """A Deployment of ``count`` simulated pods: until all are Running, and until it reports
    them available."""
    print(f"scale: a Deployment of {count} replicas", flush=True)
    t0 = time.perf_counter()
    await common.call(
        session,
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        echo_deployment("scale", count),
        expect=201,
    )
    try:
        await pods.until(lambda: pods.running >= count, deadline, f"{count} Deployment pods Running")
    except DeadlineError:
        rows.append(scale_row("Deployment create", count, None, f"{pods.running} Running at the deadline"))
        raise
    took = max(p.running for p in pods.pods.values() if p.running is not None) - t0
    rows.append(scale_row("Deployment create", count, took, milestones(pods, t0)))
    await deployment.until(lambda: deployment.reached is not None, deadline, f"Deployment {count} available")
    assert deployment.reached is not None
    rows.append(
        Row(
            "pods",
            f"scale: Deployment create → status says {count} available",
            f"{deployment.reached - t0:.2f} s",
        )
    )
    per_pod = [p.running - p.added for p in pods.pods.values() if p.running is not None]
    rows.append(
        Row("pods", "scale: Deployment, each pod ADDED seen → Running seen, p50 / p99", ms_pair(per_pod))
    )
    raw["deployment"] = {
        "all_running_s": took,
        "available_s": deployment.reached - t0,
        "per_pod_s": common.summary(per_pod),
    }
    print(f"  all Running after {took:.2f} s; {milestones(pods, t0)}", flush=True)


async def scale_bare(
    ep: Endpoint,
    namespace: str,
    count: int,
    writers: int,
    pods: PodTracker,
    deadline: Deadline,
    rows: list[Row],
    raw: dict[str, Any],
) -> None:
    """``count`` bare simulated pods from ``writers`` clients: until all are Running."""
    print(f"scale: {count} bare pods from {writers} writers", flush=True)
    t0 = time.perf_counter()
    await create_pods(ep, namespace, [f"bare-{i:05d}" for i in range(count)], writers, pods)
    creates = time.perf_counter() - t0
    try:
        await pods.until(lambda: pods.running >= count, deadline, f"{count} bare pods Running")
    except DeadlineError:
        rows.append(
            scale_row("bare pods, first create", count, None, f"{pods.running} Running at the deadline")
        )
        raise
    took = max(p.running for p in pods.pods.values() if p.running is not None) - t0
    detail = f"creates took {creates:.2f} s, {count / creates:.0f}/s from {writers} clients"
    rows.append(scale_row("bare pods, first create", count, took, detail))
    per_pod = [p.running - p.sent for p in pods.pods.values() if p.running is not None and p.sent is not None]
    rows.append(Row("pods", "scale: bare pods, each create sent → Running seen, p50 / p99", ms_pair(per_pod)))
    raw["bare"] = {"all_running_s": took, "creates_s": creates, "per_pod_s": common.summary(per_pod)}
    print(f"  all Running after {took:.2f} s (creates {creates:.2f} s)", flush=True)


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PHASES,
        default=None,
        help="run only this part (repeatable; default: both)",
    )
    parser.add_argument(
        "--pods",
        type=common.bounded_int(1, 1000),
        default=100,
        help="PODS of each bare startup batch (default: 100)",
    )
    parser.add_argument(
        "--replicas",
        type=common.bounded_int(1, 500),
        default=50,
        help="REPLICAS of each startup Deployment (default: 50)",
    )
    parser.add_argument(
        "--rounds",
        type=common.bounded_int(1, 20),
        default=2,
        help="ROUNDS of startup Deployments (default: 2)",
    )
    parser.add_argument(
        "--echo-pods",
        type=common.bounded_int(1, 200),
        default=20,
        help="ECHO_PODS for the memory figure (default: 20)",
    )
    parser.add_argument(
        "--scale-pods",
        type=common.bounded_int(1, 10000),
        default=1000,
        help="SCALE_PODS simulated pods (default: 1000)",
    )
    parser.add_argument(
        "--scale-nodes",
        type=common.bounded_int(2, 500),
        default=100,
        help="nodes of the scale cluster (default: 100)",
    )
    parser.add_argument(
        "--writers",
        type=common.bounded_int(1, 32),
        default=4,
        help="WRITERS creating the bare scale pods (default: 4)",
    )
    common.add_common_args(parser, max_seconds=900)
    return parser.parse_args(argv)


def load_average() -> str:
    """The machine's 1-minute load average: other work on the machine takes CPU from the pods."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run the pod benchmarks and print their table."""
    args = parse_args(argv)
    common.exit_on_sigterm()
    info = common.machine()
    deadline = Deadline(time.perf_counter() + args.max_seconds)
    phases = args.only or list(PHASES)
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    load_before = load_average()
    try:
        if "startup" in phases:
            with cluster(STARTUP_NODES, "process", deadline) as (home, ep):
                asyncio.run(startup_phase(home, ep, args, deadline, rows, raw.setdefault("startup", {})))
        if "scale" in phases:
            with cluster(args.scale_nodes, "simulated", deadline) as (home, ep):
                asyncio.run(scale_phase(home, ep, args, deadline, rows, raw.setdefault("scale", {})))
    except DeadlineError as e:
        rows.append(Row("pods", "(stopped at --max-seconds)", str(e)))
    load = f"{load_before} / {load_average()} on {info['nproc']} cores"
    rows.append(Row("pods", "machine load average (1 min) at start / end", load))
    common.report(rows, info, args.json, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
