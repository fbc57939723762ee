"""Part 3 targets: requests through a Service, the API server's service proxy and the in-cluster
HTTP proxy, against hitting a pod directly.

One cluster (``--nodes 3 --runtime process``), made with ``labkit cluster up`` in a temporary
home and deleted at the end. Namespace ``svcbench`` holds two backends, each a Deployment of 3
replicas with a readinessProbe behind a ClusterIP Service on port 8080:

- ``web`` runs ``labkit/echo``: a ThreadingHTTPServer (a thread per connection) that logs one
  line per request, which the daemon pumps into the pod's log;
- ``fast`` runs a minimal asyncio HTTP/1.1 server (the busybox image's host shell running this
  script with ``--serve-fast``): same kind of JSON answer, no log line. It shows what the paths
  cost when the app is not the bottleneck.

For each backend, every route gets the same requests (``GET /bench``):

- ``direct``: one pod's own address ``<podIP>:8080``, as on a real cluster;
- ``direct, 3 pods``: the connections spread over the three pods' real addresses in turn
  (a reference: the Service spreads its connections over the three pods too);
- ``Service``: the ClusterIP listener ``<clusterIP>:8080`` (kube-proxy: one pod per connection);
- ``API proxy``: ``/api/v1/namespaces/svcbench/services/NAME:8080/proxy/bench`` over HTTPS with
  the bearer token (one random pod per request);
- ``HTTP proxy``: ``GET http://NAME.svcbench:8080/bench`` sent to the namespace's HTTP proxy,
  found where pods find it: ``HTTP_PROXY`` in ``/proc/<pid>/environ`` of an echo pod's process.

Measurements, per route:

- keep-alive throughput: K concurrent connections (``--connections``, default 8 and 32), each
  sending its next request as soon as the answer is read, for ``--seconds``;
- a new connection per request (plain HTTP routes): ``--new-connections`` concurrent loops of
  connect, request with ``Connection: close``, read, close;
- latency: ``--latency-requests`` requests one after another on one keep-alive connection
  (p50 added over direct is the target), and a few hundred with a new connection each.

The client is one asyncio process with a minimal HTTP/1.1 protocol (no pipelining): it shares
the machine's cores with the daemon and the pods. Every run therefore also reports the CPU time
(``/proc/<pid>/stat`` utime + stime) of the daemon, of the backend's pod processes and of the
client, divided by the run's wall time (cores busy), and the requests per daemon-core-second:
what the daemon's one event loop could carry with a whole core to itself. Throughput runs are
repeated ``--repeats`` times, the routes taking turns, and the median is shown with the range.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import common
from bench_pods import Deadline, DeadlineError, cluster, daemon_pid, descendants, load_average
from common import Endpoint, Row

NAMESPACE = "svcbench"
SERVICE_PORT = 8080
NODES = 3
REPLICAS = 3
ECHO_IMAGE = "labkit/echo:v1"
FAST_IMAGE = "busybox:1.36"
BACKENDS = ("echo", "fast")
SERVICE_OF = {"echo": "web", "fast": "fast"}
PATH = "/bench"
RATIO_TARGET = 0.5
RATE_TARGET = 2000.0
ADDED_P50_TARGET_MS = 1.0
THROUGHPUT_TARGET = f"≥ {RATIO_TARGET:.0%} of direct (1 pod) and ≥ {RATE_TARGET:,.0f} req/s"
LATENCY_TARGET = f"added p50 ≤ {ADDED_P50_TARGET_MS:g} ms"
READY_LIMIT_S = 60.0
IDLE_SECONDS = 3.0
RUN_SLACK_S = 30.0  # a run that overstays its --seconds by this much is stuck
WARM_ATTEMPTS = 5
WARM_TIMEOUT_S = 5.0  # a connection whose handshake ACK the server dropped can hang this long
HZ = os.sysconf("SC_CLK_TCK")
READY_PROBE = {"httpGet": {"path": "/readyz", "port": SERVICE_PORT}, "periodSeconds": 1, "timeoutSeconds": 5}


# -- the fast backend (runs inside the pods) ---------------------------------------------------


class FastServer(asyncio.Protocol):
    """One connection of the fast backend: answers each request with a small JSON body."""

    count = 0  # requests served by this process

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport; start with an empty buffer."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        """Answer every complete request head in the buffer (the benchmark sends no bodies)."""
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            target = head.split(b"\r\n", 1)[0].split(b" ")
            path = target[1].decode("latin-1").split("?", 1)[0] if len(target) > 1 else "/"
            close = b"connection: close" in head.lower()
            FastServer.count += 1
            self.transport.write(fast_answer(path, FastServer.count, close))
            if close:
                self.transport.close()
                return


def fast_answer(path: str, count: int, close: bool) -> bytes:
    """The whole HTTP answer: who served the request, like labkit/echo says it."""
    body = {
        "pod": os.environ.get("HOSTNAME", ""),
        "node": os.environ.get("NODE_NAME") or None,
        "ip": os.environ.get("POD_IP", ""),
        "count": count,
        "path": path,
        "version": "fast",
    }
    data = json.dumps(body).encode() + b"\n"
    connection = b"Connection: close\r\n" if close else b""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
    return head % (len(data), connection) + data


async def serve_fast() -> None:
    """Serve on $PORT until SIGTERM."""
    loop = asyncio.get_running_loop()
    port = int(os.environ.get("PORT") or SERVICE_PORT)
    server = await loop.create_server(FastServer, "0.0.0.0", port, backlog=1024)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    print(f"fast: listening on 0.0.0.0:{port}", flush=True)
    await stop
    server.close()


# -- objects -----------------------------------------------------------------------------------


def container(backend: str) -> dict[str, Any]:
    """The container of a backend's pods."""
    spec: dict[str, Any] = {
        "name": "app",
        "ports": [{"name": "http", "containerPort": SERVICE_PORT, "protocol": "TCP"}],
        "readinessProbe": READY_PROBE,
    }
    if backend == "echo":
        return {**spec, "image": ECHO_IMAGE}
    script = (
        f"exec {shlex.quote(sys.executable)} -u {shlex.quote(str(Path(__file__).resolve()))} --serve-fast"
    )
    return {**spec, "image": FAST_IMAGE, "command": ["sh", "-c", script]}


def deployment(backend: str) -> dict[str, Any]:
    """A Deployment of 3 replicas of a backend, its pods labelled ``app=<service name>``."""
    name = SERVICE_OF[backend]
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [container(backend)]},
            },
        },
    }


def service(backend: str) -> dict[str, Any]:
    """A ClusterIP Service on port 8080 in front of a backend."""
    name = SERVICE_OF[backend]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": name},
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": SERVICE_PORT, "protocol": "TCP"}],
        },
    }


# -- the client --------------------------------------------------------------------------------


def answer_length(buffer: bytearray) -> tuple[int, int] | None:
    """(status, bytes) of the first whole HTTP answer in ``buffer``; None while incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    status = int(head[9:12])
    start = end + 4
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        stop = head.find(b"\r\n", at + 2)
        total = start + int(head[at + 17 : stop if stop >= 0 else len(head)])
        return (status, total) if len(buffer) >= total else None
    if b"\r\ntransfer-encoding: chunked" in head:
        total = chunked_length(buffer, start)
        return None if total is None else (status, total)
    if status in (204, 304) or status < 200:
        return status, start
    raise ValueError(f"an answer with neither Content-Length nor chunks: {head[:200]!r}")


def chunked_length(buffer: bytearray, at: int) -> int | None:
    """Where a chunked body starting at ``at`` ends (no trailers); None while incomplete."""
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";", 1)[0], 16)
        if size == 0:
            return line_end + 4 if len(buffer) >= line_end + 4 else None
        at = line_end + 2 + size + 2
        if len(buffer) < at:
            return None


class Client(asyncio.Protocol):
    """One HTTP/1.1 client connection: one request at a time, each answer read by its length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Connected."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Complete the request in flight once its whole answer is here."""
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            found = answer_length(self.buffer)
        except ValueError as e:
            self.waiter.set_exception(e)
            return
        if found is not None:
            del self.buffer[: found[1]]
            self.waiter.set_result(found[0])

    def connection_lost(self, exc: Exception | None) -> None:
        """The server closed: fail the request in flight."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection closed before the answer: {exc}"))

    async def exchange(self, request: bytes) -> int:
        """Send one request; its answer's status."""
        assert self.transport is not None
        if self.transport.is_closing():
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True)
class Route:
    """One way to a backend: where to connect, and the request to send there."""

    name: str  # direct, direct-3, service, apiserver, httpproxy
    label: str
    addresses: tuple[tuple[str, int], ...]
    request: bytes  # keep-alive
    closing: bytes | None  # with Connection: close; None when new connections are not measured
    tls: ssl.SSLContext | None = None

    async def connect(self, index: int = 0) -> Client:
        """A new connection to the route's ``index``-th address (in turn)."""
        host, port = self.addresses[index % len(self.addresses)]
        _, client = await asyncio.get_running_loop().create_connection(Client, host, port, ssl=self.tls)
        return client


def http_request(target: str, host: str, headers: dict[str, str], close: bool) -> bytes:
    """A GET request's bytes."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "User-Agent: labkit-bench/1", "Accept: */*"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def plain_route(name: str, label: str, addresses: list[tuple[str, int]], target: str, host: str) -> Route:
    """A plain-HTTP route, measured both keep-alive and with a new connection per request."""
    return Route(
        name,
        label,
        tuple(addresses),
        http_request(target, host, {}, False),
        http_request(target, host, {}, True),
    )


# -- CPU ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / HZ


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, from ``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / HZ


@dataclass(frozen=True)
class Meter:
    """Reads the CPU time of the daemon, of a backend's pod processes and of this client."""

    daemon: int
    backend: tuple[int, ...]

    def read(self) -> dict[str, float]:
        """CPU seconds so far, per party."""
        return {
            "daemon": cpu_seconds(self.daemon),
            "backend": sum(cpu_seconds(pid) for pid in self.backend),
            "client": time.process_time(),
            "machine": machine_busy_seconds(),
        }


@dataclass
class Load:
    """One throughput run: requests answered, errors, wall time and cores busy per party."""

    requests: int
    errors: int
    seconds: float
    cores: dict[str, float]

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds

    @property
    def other_cores(self) -> float:
        """Cores busy with anything else on the machine (other processes, the kernel's own work)."""
        ours = self.cores["daemon"] + self.cores["backend"] + self.cores["client"]
        return max(0.0, self.cores["machine"] - ours)

    @property
    def per_daemon_core(self) -> float | None:
        """Requests per daemon-core-second (None when the daemon barely ran)."""
        busy = self.cores["daemon"] * self.seconds
        return self.requests / busy if busy >= 0.05 else None


async def timed(meter: Meter, body: Callable[[], Awaitable[tuple[int, int]]], limit: float) -> Load:
    """Run ``body`` (which answers (requests, errors)) and measure its wall and CPU time."""
    before, t0 = meter.read(), time.perf_counter()
    requests, errors = await asyncio.wait_for(body(), limit)
    seconds, after = time.perf_counter() - t0, meter.read()
    return Load(requests, errors, seconds, {k: (after[k] - before[k]) / seconds for k in before})


async def keep_alive_load(route: Route, connections: int, seconds: float, cap: int, meter: Meter) -> Load:
    """``connections`` keep-alive connections sending requests back to back for ``seconds``."""
    clients: list[Client] = []
    try:
        for i in range(connections):
            clients.append(await warmed(route, i))
        counts = [0, 0]

        async def one(index: int) -> None:
            client = clients[index]
            while time.perf_counter() < stop and counts[0] < cap:
                try:
                    status = await client.exchange(route.request)
                except (ConnectionError, OSError):
                    counts[1] += 1
                    client.close()
                    client = clients[index] = await route.connect(index)
                    continue
                counts[0] += 1
                counts[1] += status != 200

        async def body() -> tuple[int, int]:
            await asyncio.gather(*(one(i) for i in range(connections)))
            return counts[0], counts[1]

        stop = time.perf_counter() + seconds
        return await timed(meter, body, seconds + RUN_SLACK_S)
    finally:
        for client in clients:
            client.close()


async def warmed(route: Route, index: int) -> Client:
    """A connection that has answered a first request (TLS done, the proxies' upstream pools
    filled). A connection the server drops (or leaves hanging) is opened again: labkit/echo
    listens with socketserver's backlog of 5, which overflows when many connections arrive
    together (the kernel counts ListenOverflows and answers with SYN cookies)."""
    for attempt in range(1, WARM_ATTEMPTS):
        with contextlib.suppress(ConnectionError, OSError, asyncio.TimeoutError):
            return await first_request(route, index)
        await asyncio.sleep(0.05 * attempt)
    return await first_request(route, index)


async def first_request(route: Route, index: int) -> Client:
    """A new connection to the route that has answered one request 200 (closed if it failed)."""
    client = await route.connect(index)
    try:
        check_ok(route, await asyncio.wait_for(client.exchange(route.request), WARM_TIMEOUT_S))
    except BaseException:
        client.close()
        raise
    return client


async def new_connection_load(route: Route, loops: int, seconds: float, cap: int, meter: Meter) -> Load:
    """``loops`` concurrent loops, each: connect, one request (Connection: close), read, close."""
    assert route.closing is not None
    request = route.closing
    counts = [0, 0]

    async def one(index: int) -> None:
        turn = index
        while time.perf_counter() < stop and counts[0] < cap:
            turn += loops
            try:
                client = await route.connect(turn)
            except OSError:
                counts[1] += 1
                continue
            try:
                status = await client.exchange(request)
            except (ConnectionError, OSError):
                counts[1] += 1
                continue
            finally:
                client.close()
            counts[0] += 1
            counts[1] += status != 200

    async def body() -> tuple[int, int]:
        await asyncio.gather(*(one(i) for i in range(loops)))
        return counts[0], counts[1]

    stop = time.perf_counter() + seconds
    return await timed(meter, body, seconds + RUN_SLACK_S)


async def sequential_latency(route: Route, count: int, new_connections: bool) -> list[float]:
    """Milliseconds of ``count`` requests one after another: on one keep-alive connection, or
    each on its own new connection (connect included)."""
    latencies: list[float] = []
    if new_connections:
        assert route.closing is not None
        for i in range(count):
            t0 = time.perf_counter()
            client = await route.connect(i)
            try:
                status = await asyncio.wait_for(client.exchange(route.closing), RUN_SLACK_S)
            finally:
                client.close()
            latencies.append(common.elapsed_ms(t0))
            check_ok(route, status)
        return latencies
    client = await route.connect()
    try:
        for _ in range(min(50, count)):  # warm-up: TLS, pools, caches
            check_ok(route, await client.exchange(route.request))
        for _ in range(count):
            t0 = time.perf_counter()
            status = await asyncio.wait_for(client.exchange(route.request), RUN_SLACK_S)
            latencies.append(common.elapsed_ms(t0))
            check_ok(route, status)
    finally:
        client.close()
    return latencies


def check_ok(route: Route, status: int) -> None:
    """Stop on an answer that is not 200: the figures would not mean anything."""
    if status != 200:
        raise common.UnexpectedStatusError(f"{route.label}: answered {status}")


# -- the cluster's side ------------------------------------------------------------------------


@dataclass
class Backend:
    """A backend as deployed: its pods' names, real addresses and processes, its Service's IP."""

    name: str
    service: str
    pods: list[str]
    real: list[tuple[str, int]]
    cluster_ip: str
    pids: list[int] = field(default_factory=list)


async def deploy(session: aiohttp.ClientSession, backend: str) -> None:
    """Create a backend's Deployment and Service."""
    await common.call(
        session, "POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", deployment(backend), expect=201
    )
    await common.call(
        session, "POST", f"/api/v1/namespaces/{NAMESPACE}/services", service(backend), expect=201
    )


async def wait_ready(session: aiohttp.ClientSession, backend: str, deadline: Deadline) -> Backend:
    """Wait until the Service has 3 ready endpoints and every pod its real port; the backend."""
    name = SERVICE_OF[backend]
    limit = time.perf_counter() + READY_LIMIT_S
    while True:
        found = await ready_backend(session, backend, name)
        if found is not None:
            return found
        deadline.check(f"{name}: 3 ready endpoints")
        if time.perf_counter() > limit:
            raise RuntimeError(f"{name}: not 3 ready endpoints after {READY_LIMIT_S:.0f} s")
        await asyncio.sleep(0.2)


async def ready_backend(session: aiohttp.ClientSession, backend: str, name: str) -> Backend | None:
    """The backend if its Service has 3 ready endpoints and its pods their port mappings."""
    async with session.get(f"/api/v1/namespaces/{NAMESPACE}/endpoints/{name}") as response:
        if response.status == 404:  # the endpoints controller has not written it yet
            return None
        endpoints = json.loads(await response.read())
    ready = [a for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []]
    if len(ready) < REPLICAS:
        return None
    pods = json.loads(
        await common.call(session, "GET", f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3D{name}")
    )["items"]
    real = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            return None
        real.append((pod["metadata"]["name"], (str(ip), SERVICE_PORT)))  # as in a real cluster
    svc = json.loads(await common.call(session, "GET", f"/api/v1/namespaces/{NAMESPACE}/services/{name}"))
    return Backend(backend, name, [p for p, _ in real], [a for _, a in real], svc["spec"]["clusterIP"])


def pod_processes(daemon: int) -> dict[int, dict[str, str]]:
    """The environment of every process below the daemon (the pods' processes), by pid."""
    found = {}
    for pid in descendants(daemon):
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/environ").read_bytes()
            found[pid] = dict(
                item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item
            )
    return found


def proxy_address(processes: dict[int, dict[str, str]], pods: list[str]) -> tuple[str, int] | None:
    """The HTTP proxy the daemon gives the pods (their HTTP_PROXY), read from a pod's process;
    None when pods get none (they resolve Service names through their /etc/hosts)."""
    for env in processes.values():
        if env.get("HOSTNAME") in pods and env.get("HTTP_PROXY"):
            url = urlsplit(env["HTTP_PROXY"])
            if url.hostname is None or not url.hostname.startswith("127.") or url.port is None:
                raise RuntimeError(f"unexpected HTTP_PROXY in a pod: {env['HTTP_PROXY']}")
            return url.hostname, url.port
    return None


def routes(backend: Backend, ep: Endpoint, proxy: tuple[str, int] | None) -> list[Route]:
    """The routes to one backend."""
    direct = backend.real[0]
    api = urlsplit(ep.server)
    assert api.hostname is not None and api.port is not None
    api_path = f"/api/v1/namespaces/{NAMESPACE}/services/{backend.service}:{SERVICE_PORT}/proxy{PATH}"
    api_headers = {"Authorization": f"Bearer {ep.token}"}
    host = f"{backend.service}.{NAMESPACE}:{SERVICE_PORT}"
    found = [
        plain_route("direct", f"direct, pod {backend.pods[0]}", [direct], PATH, f"{direct[0]}:{direct[1]}"),
        plain_route("direct-3", "direct, 3 pods in turn", backend.real, PATH, "127.0.0.1"),
        plain_route(
            "service",
            f"Service {backend.cluster_ip}:{SERVICE_PORT}",
            [(backend.cluster_ip, SERVICE_PORT)],
            PATH,
            f"{backend.cluster_ip}:{SERVICE_PORT}",
        ),
        Route(
            "apiserver",
            "API server service proxy (HTTPS)",
            ((api.hostname, api.port),),
            http_request(api_path, api.netloc, api_headers, False),
            None,
            ep.ssl_context(),
        ),
    ]
    if proxy is not None:
        found.append(
            plain_route(
                "httpproxy", f"HTTP proxy {proxy[0]}:{proxy[1]}", [proxy], f"http://{host}{PATH}", host
            )
        )
    return found


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Results:
    """Everything measured for one backend."""

    loads: dict[tuple[str, str], list[Load]] = field(default_factory=dict)  # (route, mode) → runs
    latency: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (route, mode) → ms

    def median(self, route: str, mode: str) -> Load | None:
        """The run with the median rate."""
        runs = sorted(self.loads.get((route, mode), []), key=lambda r: r.rate)
        return runs[len(runs) // 2] if runs else None


def modes(args: argparse.Namespace) -> list[tuple[str, int]]:
    """The throughput modes: ("keep-alive", K) for each K, then ("new", loops)."""
    return [("keep-alive", k) for k in args.connections] + [("new", args.new_connections)]


def mode_label(mode: str, width: int) -> str:
    """How a mode reads in the table."""
    return f"keep-alive K={width}" if mode == "keep-alive" else f"new connection per request, {width} loops"


async def measure_backend(
    backend: Backend, all_routes: list[Route], meter: Meter, args: argparse.Namespace, deadline: Deadline
) -> Results:
    """Throughput (routes taking turns, REPEATS rounds) then latency, for one backend."""
    results = Results()
    for round_ in range(1, args.repeats + 1):
        for mode, width in modes(args):
            for route in all_routes:
                if mode == "new" and route.closing is None:
                    continue
                deadline.check(f"{backend.name}: {route.label}")
                if mode == "new":
                    load = await new_connection_load(route, width, args.seconds, args.max_requests, meter)
                else:
                    load = await keep_alive_load(route, width, args.seconds, args.max_requests, meter)
                results.loads.setdefault((route.name, f"{mode}-{width}"), []).append(load)
                what = f"{backend.name}: {route.label}, {mode_label(mode, width)}"
                print(f"  [{round_}] {what}: {describe_load(load)}", flush=True)
                await asyncio.sleep(0.3)  # let closed connections and the pods settle
    for route in all_routes:
        deadline.check(f"{backend.name}: latency {route.label}")
        ms = await sequential_latency(route, args.latency_requests, False)
        results.latency[(route.name, "keep-alive")] = ms
        print("  " + common.describe(f"{backend.name}: {route.label}, sequential keep-alive", ms), flush=True)
        if route.closing is not None:
            ms = await sequential_latency(route, args.latency_new, True)
            results.latency[(route.name, "new")] = ms
            print("  " + common.describe(f"{backend.name}: {route.label}, sequential new connections", ms))
    return results


def describe_load(load: Load) -> str:
    """One run in a line."""
    errors = f", {load.errors} errors" if load.errors else ""
    return f"{load.rate:,.0f} req/s ({load.requests} in {load.seconds:.2f} s{errors}); {cores_text(load)}"


# -- the table ---------------------------------------------------------------------------------


def throughput_rows(
    backend: str, results: Results, all_routes: list[Route], args: argparse.Namespace
) -> list[Row]:
    """A row per route and mode: median rate (range), cores, ratio to direct and verdict."""
    rows = []
    for mode, width in modes(args):
        key = f"{mode}-{width}"
        direct = results.median("direct", key)
        spread = results.median("direct-3", key)
        for route in all_routes:
            runs = results.loads.get((route.name, key))
            load = results.median(route.name, key)
            if not runs or load is None:
                continue
            rates = [r.rate for r in runs]
            value = f"{load.rate:,.0f} req/s" + (
                f" [{min(rates):,.0f} to {max(rates):,.0f}]" if len(runs) > 1 else ""
            )
            target, met = "", None
            if route.name not in ("direct", "direct-3") and direct is not None:
                ratio = load.rate / direct.rate
                value += f" = {ratio:.0%} of direct" + (
                    f" ({load.rate / spread.rate:.0%} of direct to 3 pods)" if spread is not None else ""
                )
                target, met = THROUGHPUT_TARGET, ratio >= RATIO_TARGET and load.rate >= RATE_TARGET
                if direct.rate < RATE_TARGET:  # the backend itself caps below the floor
                    value += f" (direct itself {direct.rate:,.0f} < {RATE_TARGET:,.0f}: ratio judged alone)"
                    met = ratio >= RATIO_TARGET
            value += "; " + cores_text(load)
            if load.errors:
                value += f"; {load.errors} errors"
            rows.append(
                Row("services", f"{backend}: {route.label}, {mode_label(mode, width)}", value, target, met)
            )
    return rows


def cores_text(load: Load) -> str:
    """Cores busy during a run (``other``: the rest of the machine), and the requests per
    daemon-core-second."""
    per_core = load.per_daemon_core
    return (
        f"cores: daemon {load.cores['daemon']:.2f}"
        + (f" ({per_core:,.0f} req/daemon-core-s)" if per_core else "")
        + f", backend {load.cores['backend']:.2f}, client {load.cores['client']:.2f}"
        + f", other {load.other_cores:.2f}"
    )


def latency_rows(backend: str, results: Results, all_routes: list[Route]) -> list[Row]:
    """A row per route: sequential p50 / p99, and p50 added over direct (the target, keep-alive)."""
    rows = []
    for mode, text in (("keep-alive", "keep-alive"), ("new", "new connection each")):
        direct = results.latency.get(("direct", mode))
        for route in all_routes:
            ms = results.latency.get((route.name, mode))
            if ms is None:
                continue
            s = common.summary(ms)
            value = f"p50 {s['p50']:.3f} / p99 {s['p99']:.3f} ms"
            target, met = "", None
            if route.name not in ("direct", "direct-3") and direct is not None:
                added = s["p50"] - common.percentile(direct, 50)
                value += f", p50 {added:+.3f} ms over direct"
                if mode == "keep-alive":
                    target, met = LATENCY_TARGET, added <= ADDED_P50_TARGET_MS
            metric = f"{backend}: {route.label}, {len(ms)} sequential requests, {text}"
            rows.append(Row("services", metric, value, target, met))
    return rows


def raw_results(results: Results) -> dict[str, Any]:
    """The raw figures, for --json."""
    return {
        "throughput": {
            f"{route}/{mode}": [
                {**asdict(r), "rate": r.rate, "per_daemon_core": r.per_daemon_core} for r in runs
            ]
            for (route, mode), runs in results.loads.items()
        },
        "latency_ms": {
            f"{route}/{mode}": common.summary(ms) for (route, mode), ms in results.latency.items()
        },
    }


# -- main --------------------------------------------------------------------------------------


async def run(
    home: common.Home,
    ep: Endpoint,
    args: argparse.Namespace,
    deadline: Deadline,
    rows: list[Row],
    raw: dict[str, Any],
) -> None:
    """Deploy the backends, find the routes, measure each backend in turn."""
    daemon = daemon_pid(home)
    async with ep.session() as session:
        await common.create_namespace(session, NAMESPACE)
        for backend in args.backend:
            await deploy(session, backend)
        ready = {b: await wait_ready(session, b, deadline) for b in args.backend}
    idle = await idle_cores(daemon, IDLE_SECONDS)
    rows.append(
        Row(
            "services",
            f"daemon CPU, idle with {len(args.backend) * REPLICAS} pods (probes)",
            f"{idle:.3f} core",
        )
    )
    raw["daemon_idle_cores"] = idle
    processes = pod_processes(daemon)
    proxy = proxy_address(processes, [p for b in ready.values() for p in b.pods])
    raw["http_proxy"] = None if proxy is None else f"{proxy[0]}:{proxy[1]}"
    print(f"HTTP proxy for namespace {NAMESPACE} (HTTP_PROXY of a pod process): {raw['http_proxy']}")
    for name, backend in ready.items():
        backend.pids = [pid for pid, env in processes.items() if env.get("HOSTNAME") in backend.pods]
        print(
            f"{name}: pods {backend.pods} (processes {backend.pids}), real addresses {backend.real}, "
            f"Service {backend.cluster_ip}:{SERVICE_PORT}",
            flush=True,
        )
        if not backend.pids:
            raise RuntimeError(f"{name}: no pod process found below the daemon")
        all_routes = routes(backend, ep, proxy)
        results = await measure_backend(
            backend, all_routes, Meter(daemon, tuple(backend.pids)), args, deadline
        )
        rows += throughput_rows(name, results, all_routes, args)
        rows += latency_rows(name, results, all_routes)
        raw[name] = {
            "pods": backend.pods,
            "real": backend.real,
            "cluster_ip": backend.cluster_ip,
            **raw_results(results),
        }


async def idle_cores(daemon: int, seconds: float) -> float:
    """Cores the daemon keeps busy with no traffic (probes, controllers, its loop)."""
    before = cpu_seconds(daemon)
    await asyncio.sleep(seconds)
    return (cpu_seconds(daemon) - before) / seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend",
        action="append",
        choices=BACKENDS,
        default=None,
        help="measure this backend (repeatable; default: echo and fast)",
    )
    parser.add_argument(
        "--connections",
        type=common.bounded_int(1, 256),
        action="append",
        default=None,
        help="K keep-alive connections of a throughput run (repeatable; default: 8 and 32)",
    )
    parser.add_argument(
        "--new-connections",
        type=common.bounded_int(1, 256),
        default=8,
        help="concurrent loops of the new-connection-per-request runs (default: 8)",
    )
    parser.add_argument(
        "--seconds",
        type=common.bounded_int(1, 60),
        default=3,
        help="length of each throughput run (default: 3)",
    )
    parser.add_argument(
        "--max-requests",
        type=common.bounded_int(100, 1_000_000),
        default=200_000,
        help="a throughput run also stops after this many requests (default: 200000)",
    )
    parser.add_argument(
        "--repeats",
        type=common.bounded_int(1, 20),
        default=3,
        help="rounds of throughput runs, the routes taking turns; the median is shown (default: 3)",
    )
    parser.add_argument(
        "--latency-requests",
        type=common.bounded_int(10, 100_000),
        default=2000,
        help="sequential keep-alive requests per route for the latency (default: 2000)",
    )
    parser.add_argument(
        "--latency-new",
        type=common.bounded_int(10, 10_000),
        default=300,
        help="sequential requests on new connections per route (default: 300)",
    )
    parser.add_argument("--serve-fast", action="store_true", help=argparse.SUPPRESS)  # the fast pods' server
    common.add_common_args(parser, max_seconds=900)
    args = parser.parse_args(argv)
    args.backend = list(dict.fromkeys(args.backend or BACKENDS))
    args.connections = list(dict.fromkeys(args.connections or [8, 32]))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the Service traffic benchmarks and print their table."""
    args = parse_args(argv)
    if args.serve_fast:
        asyncio.run(serve_fast())
        return 0
    common.exit_on_sigterm()
    info = common.machine()
    deadline = Deadline(time.perf_counter() + args.max_seconds)
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    load_before = load_average()
    try:
        with cluster(NODES, "process", deadline) as (home, ep):
            asyncio.run(run(home, ep, args, deadline, rows, raw))
    except DeadlineError as e:
        rows.append(Row("services", "(stopped at --max-seconds)", str(e)))
    load = f"{load_before} / {load_average()} on {info['nproc']} cores"
    rows.append(Row("services", "machine load average (1 min) at start / end", load))
    common.report(rows, info, args.json, raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
