"""Service traffic, in-process, over real loopback sockets.

The endpoints controller, the router and the Service listeners run in the test's event loop.
Each "pod" is a tiny asyncio server on 127.0.0.1 that answers a line with its name; the pod
object carries the ``labkit.dev/ports`` annotation a kubelet writes, so the listeners reach it
as they reach a real pod's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from labkit.embedded.apiserver.hooks import ingress_ip
from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.endpoints import EndpointsController
from labkit.embedded.kubelet.network import PORTS_ANNOTATION
from labkit.embedded.kubeproxy.balancer import Balancer, Endpoint, Policy
from labkit.embedded.kubeproxy.listeners import ServiceListeners, Timeouts
from labkit.embedded.kubeproxy.records import RecordLog
from labkit.embedded.kubeproxy.router import ServiceRouter, no_endpoints
from labkit.embedded.resources import lookup
from labkit.embedded.state import ClusterConfig
from labkit.shared.timeutil import rfc3339
from tests.unit import support

PODS = lookup("", "v1", "pods")
SERVICES = lookup("", "v1", "services")
ENDPOINTS = lookup("", "v1", "endpoints")
assert PODS and SERVICES and ENDPOINTS

Obj = dict[str, Any]
NS = "default"
NAMES = ("web-a", "web-b", "web-c")


@pytest.fixture
def ctx(make_ctx: Callable[..., ClusterContext]) -> ClusterContext:
    """A bootstrapped 3-node cluster store with a balancing seed."""
    return make_ctx(seed=7)


class Backend:
    """A pod's process: answers each connection's first line with its name, then closes.
    ``hold`` makes it wait for the client to go away instead (a request that never ends)."""

    def __init__(self, name: str, hold: bool = False) -> None:
        self.name = name
        self.hold = hold
        self.served = 0
        self.open = 0
        self.closed_by_peer = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on a free port of 127.0.0.1; the port."""
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            await reader.readline()
            if self.hold:
                with contextlib.suppress(ConnectionError):
                    await reader.read()
                self.closed_by_peer += 1
                return
            self.served += 1
            writer.write(f"{self.name}\n".encode())
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            writer.close()


class Lab:
    """The loops under test and helpers to drive them."""

    def __init__(self, ctx: ClusterContext, router: ServiceRouter, listeners: ServiceListeners) -> None:
        self.ctx = ctx
        self.router = router
        self.listeners = listeners
        self.backends: dict[str, Backend] = {}

    async def pod(
        self,
        name: str,
        ip: str,
        node: str = "lab-worker",
        ready: bool = True,
        hold: bool = False,
        port: int = 0,
    ) -> Backend:
        """A Running pod on ``node`` whose containerPort 8080 is a real server (or ``port``)."""
        backend = self.backends[name] = Backend(name, hold)
        real = port or await backend.start()
        body = {
            "metadata": {
                "name": name,
                "labels": {"app": "web"},
                "annotations": {PORTS_ANNOTATION: f'{{"app": {{"8080": {real}}}}}'},
            },
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "app",
                        "image": "labkit/echo:1",
                        "ports": [{"name": "http", "containerPort": 8080}],
                    }
                ],
            },
        }
        self.ctx.registry.create(PODS, NS, body)
        self.set_ready(name, ip, ready)
        return backend

    def set_ready(self, name: str, ip: str, ready: bool) -> None:
        """Write the pod's status as its kubelet would."""

        def change(p: Obj) -> None:
            flag = "True" if ready else "False"
            p["status"].update(
                phase="Running",
                podIP=ip,
                podIPs=[{"ip": ip}],
                conditions=[{"type": "Ready", "status": flag, "lastTransitionTime": rfc3339()}],
            )

        self.ctx.registry.mutate(PODS, NS, name, change, subresource="status")

    async def pods(self, count: int = 3) -> None:
        """``count`` ready pods, spread over two nodes."""
        for i, name in enumerate(NAMES[:count]):
            await self.pod(name, f"127.244.{1 + i % 2}.{10 + i}", node=("lab-worker", "lab-worker2")[i % 2])

    async def service(self, name: str = "web", annotations: Obj | None = None, **spec: Any) -> Obj:
        """A Service on port 8080 → http, listened on once this returns."""
        body = {
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": "http"}], **spec},
        }
        svc = self.ctx.registry.create(SERVICES, NS, body)
        ip = svc["spec"]["clusterIP"]
        if ip != "None":
            await eventually(lambda: (ip, 8080) in self.listeners.servers)
        return svc

    async def ready_count(self, name: str, count: int) -> None:
        """Wait until the Service's Endpoints list ``count`` ready addresses."""

        def ready() -> bool:
            ep = self.ctx.store.find(ENDPOINTS.key, NS, name) or {}
            return sum(len(s.get("addresses") or []) for s in ep.get("subsets") or []) == count

        await eventually(ready)

    def events(self, name: str) -> list[Obj]:
        """Events about the Service ``name``."""
        items, _ = self.ctx.store.list("core/events", NS)
        return [
            e
            for e in items
            if e["involvedObject"]["name"] == name and e["involvedObject"]["kind"] == "Service"
        ]


def run(
    ctx: ClusterContext, scenario: Callable[[Lab], Awaitable[None]], timeouts: Timeouts | None = None
) -> None:
    """Run ``scenario`` with the endpoints controller, the router and the listeners started."""

    async def main() -> None:
        router = ServiceRouter(ctx.store, ctx.config)
        endpoints = EndpointsController(ctx)
        listeners = ServiceListeners(ctx, router, timeouts)
        listeners.retry_seconds = 0.1
        for listener in (router.notify, endpoints.notify, listeners.notify):
            ctx.store.add_listener(listener)
        endpoints.start()
        listeners.start()
        lab = Lab(ctx, router, listeners)
        try:
            await scenario(lab)
        finally:
            await listeners.stop()
            await endpoints.stop()
            for backend in lab.backends.values():
                if backend.server is not None:
                    backend.server.close()

    asyncio.run(main())


async def eventually(what: Callable[[], Any], timeout: float = 2.0) -> Any:
    """Poll until ``what()`` is truthy, within two seconds by default; its value."""
    return await support.eventually(what, timeout)


async def ask(host: str, port: int, client_ip: str | None = None, line: bytes = b"hi\n") -> str:
    """One connection, one line: the name of the pod that answered."""
    local = (client_ip, 0) if client_ip else None
    reader, writer = await asyncio.open_connection(host, port, local_addr=local)
    try:
        writer.write(line)
        return (await asyncio.wait_for(reader.read(), 5)).decode().strip()
    finally:
        writer.close()


async def spread(host: str, port: int, count: int, batch: int = 100) -> Counter[str]:
    """``count`` connections, ``batch`` at a time: who answered how often."""
    answers: Counter[str] = Counter()
    for start in range(0, count, batch):
        answers.update(await asyncio.gather(*(ask(host, port) for _ in range(min(batch, count - start)))))
    return answers


def free_node_port() -> int:
    """A node port that nothing on this machine listens on."""
    for _ in range(100):
        candidate = random.randint(30000, 32767)
        with contextlib.closing(socket.socket()) as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    raise AssertionError("no free node port")


# -- balancing over real connections --------------------------------------------------------------


def test_round_robin_splits_3000_connections_exactly(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods()
        svc = await lab.service(annotations={"labkit.dev/balancing": "round-robin"})
        await lab.ready_count("web", 3)
        answers = await spread(svc["spec"]["clusterIP"], 8080, 3000)
        assert set(answers) == set(NAMES)
        assert all(abs(n - 1000) <= 1 for n in answers.values()), answers
        assert {b.name: b.served for b in lab.backends.values()} == dict(answers)

    run(ctx, scenario)


def test_random_is_within_ten_percent_for_3000_connections(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods()
        svc = await lab.service()
        await lab.ready_count("web", 3)
        answers = await spread(svc["spec"]["clusterIP"], 8080, 3000)
        assert set(answers) == set(NAMES)
        assert all(900 <= n <= 1100 for n in answers.values()), answers
        assert {r["mode"] for r in lab.router.records(NS, "web")} == {"random"}

    run(ctx, scenario)


def test_client_ip_affinity_pins_each_client_to_one_pod(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods()
        svc = await lab.service(
            sessionAffinity="ClientIP", annotations={"labkit.dev/balancing": "round-robin"}
        )
        await lab.ready_count("web", 3)
        seen: dict[str, set[str]] = {}
        for client in ("127.0.0.2", "127.0.0.3", "127.0.0.4") * 20:
            seen.setdefault(client, set()).add(await ask(svc["spec"]["clusterIP"], 8080, client_ip=client))
        assert all(len(pods) == 1 for pods in seen.values()), seen
        assert len(set.union(*seen.values())) == 3  # round-robin gave each new client the next pod
        assert {r["mode"] for r in lab.router.records(NS, "web")} == {"client-ip"}

    run(ctx, scenario)


def test_a_pod_that_turns_not_ready_gets_no_more_traffic(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods()
        svc = await lab.service(annotations={"labkit.dev/balancing": "round-robin"})
        await lab.ready_count("web", 3)
        lab.set_ready("web-b", "127.244.2.11", ready=False)
        started = time.monotonic()
        await lab.ready_count("web", 2)
        assert time.monotonic() - started < 1.0
        answers = await spread(svc["spec"]["clusterIP"], 8080, 300)
        assert answers == Counter({"web-a": 150, "web-c": 150})

    run(ctx, scenario)


def test_a_terminating_pod_gets_no_traffic_even_before_the_endpoints_drop_it(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods()
        await lab.service(annotations={"labkit.dev/balancing": "round-robin"})
        await lab.ready_count("web", 3)
        lab.ctx.registry.delete(PODS, NS, "web-b")  # graceful: terminating; no await, so no controller ran
        ep = lab.ctx.store.find(ENDPOINTS.key, NS, "web")
        assert ep is not None and len(ep["subsets"][0]["addresses"]) == 3
        picks = Counter(lab.router.route(NS, "web", 8080).endpoint.pod for _ in range(30))  # type: ignore[union-attr]
        assert picks == Counter({"web-a": 15, "web-c": 15})

    run(ctx, scenario)


# -- failure modes ------------------------------------------------------------------------------


def test_no_ready_endpoint_resets_the_connection_at_once(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        svc = await lab.service(selector={"app": "nothing"})
        started = time.monotonic()
        with pytest.raises(ConnectionResetError):
            await ask(svc["spec"]["clusterIP"], 8080)
        assert time.monotonic() - started < 0.5
        (record,) = lab.router.records(NS, "web")
        assert record["outcome"] == "no-endpoints" and record["pod"] is None

    run(ctx, scenario)


def test_an_endpoint_that_refuses_resets_the_client_and_is_recorded(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        dead = free_node_port()  # a port nothing listens on
        await lab.pod("web-a", "127.244.1.10", port=dead)
        svc = await lab.service()
        await lab.ready_count("web", 1)
        with pytest.raises(ConnectionResetError):
            await ask(svc["spec"]["clusterIP"], 8080)
        await eventually(lambda: lab.router.records(NS, "web")[0]["duration"] is not None)
        (record,) = lab.router.records(NS, "web")
        assert record["outcome"] == "connect-failed" and record["pod"] == "web-a"
        assert not lab.listeners.connections

    run(ctx, scenario)


def test_idle_and_slow_clients_do_not_block_others_and_are_closed(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        svc = await lab.service()
        await lab.ready_count("web", 1)
        ip = svc["spec"]["clusterIP"]
        idle = [await asyncio.open_connection(ip, 8080) for _ in range(30)]
        slow_reader, slow_writer = await asyncio.open_connection(ip, 8080)
        slow_writer.write(b"h")  # a slowloris: one byte of a request, then nothing
        started = time.monotonic()
        assert await spread(ip, 8080, 50, batch=10) == Counter({"web-a": 50})
        assert time.monotonic() - started < 2.0
        for reader, _ in idle:
            assert await asyncio.wait_for(reader.read(), 3) == b""  # closed by the idle timeout
        await eventually(lambda: lab.backends["web-a"].open == 0 and not lab.listeners.connections, 3)
        assert await asyncio.wait_for(slow_reader.read(), 3) == b""
        for _, writer in [*idle, (slow_reader, slow_writer)]:
            writer.close()

    run(ctx, scenario, Timeouts(connect=1.0, idle=0.3, half_open=0.2))


def test_a_half_closed_request_still_gets_its_answer(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        svc = await lab.service()
        await lab.ready_count("web", 1)
        reader, writer = await asyncio.open_connection(svc["spec"]["clusterIP"], 8080)
        writer.write(b"no newline")
        writer.write_eof()  # the backend's readline ends at our FIN, and it answers
        assert await asyncio.wait_for(reader.read(), 3) == b"web-a\n"
        writer.close()

    run(ctx, scenario)


def test_a_client_that_disconnects_mid_request_leaks_nothing(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        backend = await lab.pod("web-a", "127.244.1.10", hold=True)
        svc = await lab.service()
        await lab.ready_count("web", 1)
        for _ in range(20):
            _, writer = await asyncio.open_connection(svc["spec"]["clusterIP"], 8080)
            writer.write(b"GET / HTTP/1.1\r\n")
            await eventually(lambda: backend.open == 1)
            writer.transport.abort()  # gone without a goodbye
            await eventually(lambda: backend.open == 0)
        assert backend.closed_by_peer == 20
        await eventually(lambda: not lab.listeners.connections)
        assert all(r["duration"] is not None for r in lab.router.records(NS, "web"))

    run(ctx, scenario)


# -- node ports, load balancers, clashes --------------------------------------------------------------


def test_node_port_answers_on_localhost_and_every_node_address(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        svc = await lab.service(type="NodePort")
        node_port = svc["spec"]["ports"][0]["nodePort"]
        await eventually(lambda: ("127.18.0.4", node_port) in lab.listeners.servers)
        await lab.ready_count("web", 1)
        for host in ("127.0.0.1", "127.18.0.2", "127.18.0.3", "127.18.0.4"):
            assert await ask(host, node_port) == "web-a"
        assert await ask(svc["spec"]["clusterIP"], 8080) == "web-a"
        vias = [r["via"] for r in lab.router.records(NS, "web")]
        assert vias == ["nodeport"] * 4 + ["clusterip"]

    run(ctx, scenario)


def test_load_balancer_gets_a_loopback_ingress_that_answers(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        svc = await lab.service(type="LoadBalancer")
        cluster_ip = svc["spec"]["clusterIP"]
        ingress = svc["status"]["loadBalancer"]["ingress"]
        assert ingress == [{"ip": ingress_ip(cluster_ip), "ipMode": "VIP"}]
        assert ingress[0]["ip"].startswith("127.100.")
        await eventually(lambda: (ingress[0]["ip"], 8080) in lab.listeners.servers)
        await lab.ready_count("web", 1)
        assert await ask(ingress[0]["ip"], 8080) == "web-a"
        assert lab.router.records(NS, "web")[-1]["via"] == "loadbalancer"

        def to_cluster_ip(s: Obj) -> None:
            s["spec"]["type"] = "ClusterIP"
            s["spec"]["ports"][0].pop("nodePort")
            s["spec"].pop("externalTrafficPolicy")

        changed = lab.ctx.registry.mutate(SERVICES, NS, "web", to_cluster_ip)
        assert changed["status"]["loadBalancer"] == {}
        await eventually(lambda: (ingress[0]["ip"], 8080) not in lab.listeners.servers)
        with pytest.raises(ConnectionRefusedError):
            await ask(ingress[0]["ip"], 8080)
        assert await ask(cluster_ip, 8080) == "web-a"

    run(ctx, scenario)


def test_a_port_held_by_another_process_is_a_warning_event_and_retried(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        port = free_node_port()
        foreign = socket.socket()
        foreign.bind(("127.0.0.1", port))
        foreign.listen()
        svc = await lab.service(
            type="NodePort", ports=[{"name": "http", "port": 8080, "targetPort": 8080, "nodePort": port}]
        )
        (event,) = await eventually(lambda: lab.events("web"))
        assert event["type"] == "Warning" and event["reason"] == "FailedToListen"
        assert event["source"]["component"] == "kube-proxy"
        assert event["message"].startswith(
            f'cannot listen on 127.0.0.1:{port} for the nodePort of port "http": '
            "the address is already in use"
        )
        await lab.ready_count("web", 1)
        assert await ask("127.18.0.2", port) == "web-a"  # the other addresses work meanwhile
        assert await ask(svc["spec"]["clusterIP"], 8080) == "web-a"
        foreign.close()
        await eventually(lambda: ("127.0.0.1", port) in lab.listeners.servers)
        assert await ask("127.0.0.1", port) == "web-a"
        assert len(lab.events("web")) == 1  # retries do not repeat the event

    run(ctx, scenario)


def test_a_headless_service_has_no_listener(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        await lab.service("db", clusterIP="None")
        await lab.ready_count("db", 1)
        await lab.service("web")
        owners = {owner for owner, _, _ in lab.listeners.servers.values()} - {(NS, "kubernetes")}
        assert owners == {(NS, "web")}

    run(ctx, scenario)


def test_deleting_a_service_closes_its_listener(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        svc = await lab.service()
        await lab.ready_count("web", 1)
        assert await ask(svc["spec"]["clusterIP"], 8080) == "web-a"
        lab.ctx.registry.delete(SERVICES, NS, "web")
        await eventually(lambda: all(owner != (NS, "web") for owner, _, _ in lab.listeners.servers.values()))
        with pytest.raises(ConnectionRefusedError):
            await ask(svc["spec"]["clusterIP"], 8080)

    run(ctx, scenario)


def test_an_unknown_balancing_annotation_is_a_warning_and_falls_back(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        svc = await lab.service(annotations={"labkit.dev/balancing": "fastest", "labkit.dev/seed": "x"})
        events = await eventually(lambda: len(lab.events("web")) == 2 and lab.events("web"))
        assert {e["reason"] for e in events} == {"InvalidAnnotation"}
        assert {e["message"] for e in events} == {
            'invalid value "fastest" for annotation labkit.dev/balancing: use random or round-robin; '
            "balancing random instead",
            'invalid value "x" for annotation labkit.dev/seed: must be an integer',
        }
        await lab.ready_count("web", 1)
        assert await ask(svc["spec"]["clusterIP"], 8080) == "web-a"
        assert lab.router.records(NS, "web")[0]["mode"] == "random"

    run(ctx, scenario)


# -- records --------------------------------------------------------------------------------------


def test_records_name_the_endpoint_of_every_connection(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods()
        svc = await lab.service(annotations={"labkit.dev/balancing": "round-robin"})
        await lab.ready_count("web", 3)
        ip = svc["spec"]["clusterIP"]
        answers, clients = [], []
        for _ in range(30):
            reader, writer = await asyncio.open_connection(ip, 8080)
            clients.append("{}:{}".format(*writer.get_extra_info("sockname")))
            writer.write(b"hi\n")
            answers.append((await reader.read()).decode().strip())
            writer.close()
        await eventually(lambda: all(r["duration"] is not None for r in lab.router.records(NS, "web")))
        records = lab.router.records(NS, "web")
        pods = {p["metadata"]["name"]: p for p in lab.ctx.store.list(PODS.key, NS)[0]}
        assert [r["pod"] for r in records] == answers
        assert [r["client"] for r in records] == clients
        for r in records:
            pod = pods[r["pod"]]
            assert r["namespace"] == NS and r["service"] == "web"
            assert (r["port"], r["port_name"], r["via"], r["mode"], r["outcome"]) == (
                8080,
                "",
                "clusterip",
                "round-robin",
                "ok",
            )
            assert r["node"] == pod["spec"]["nodeName"]
            assert r["pod_ip"] == pod["status"]["podIP"] and r["endpoint"] == f"{r['pod_ip']}:8080"
            assert (r["bytes_in"], r["bytes_out"]) == (3, len(r["pod"]) + 1)
        assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
        middle = records[14]["time"]
        assert len(lab.router.records(NS, "web", since=middle)) == 15
        lab.router.clear(NS, "web")
        assert lab.router.records(NS, "web") == []

    run(ctx, scenario)


def test_the_ring_keeps_only_the_most_recent_records() -> None:
    log = RecordLog(size=5)
    common = {"namespace": NS, "port": 80, "port_name": "", "client": "127.0.0.1:1", "via": "clusterip"}
    for i in range(8):
        log.add(
            service="web",
            mode="random",
            pod=f"p{i}",
            node=None,
            pod_ip=None,
            endpoint=None,
            outcome="ok",
            **common,
        )
    log.add(
        service="api", mode="random", pod="x", node=None, pod_ip=None, endpoint=None, outcome="ok", **common
    )
    assert [r["pod"] for r in log.records(NS, "web")] == ["p3", "p4", "p5", "p6", "p7"]
    assert [r["pod"] for r in log.records(NS, "api")] == ["x"]


# -- the router, as the API server's proxy and the HTTP proxy use it ----------------------------------


def test_router_errors_name_the_service_and_port(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods(1)
        await lab.service(ports=[{"name": "http", "port": 8080, "targetPort": "http"}])
        await lab.ready_count("web", 1)
        with pytest.raises(ApiError) as missing:
            lab.router.route(NS, "nope", 80)
        assert (missing.value.code, missing.value.message) == (404, 'services "nope" not found')
        with pytest.raises(ApiError) as number:
            lab.router.route(NS, "web", 81)
        assert (number.value.code, number.value.message) == (
            503,
            'no service port 81 found for service "web"',
        )
        with pytest.raises(ApiError) as name:
            lab.router.route(NS, "web", "grpc")
        assert name.value.message == 'no service port "grpc" found for service "web"'
        with pytest.raises(ValueError, match="unknown balancing mode 'fastest'"):
            lab.router.route(NS, "web", 8080, mode="fastest")
        for port in (8080, "8080", "http", ""):
            assert lab.router.route(NS, "web", port).endpoint is not None
        assert no_endpoints("web").to_status()["message"] == 'no endpoints available for service "web"'
        assert no_endpoints("web").code == 503

    run(ctx, scenario)


def test_a_mode_override_ignores_affinity_and_a_seed_repeats_every_mode(ctx: ClusterContext) -> None:
    async def scenario(lab: Lab) -> None:
        await lab.pods()
        await lab.service(sessionAffinity="ClientIP")
        await lab.ready_count("web", 3)

        def picks(seed: int, mode: str | None) -> list[str | None]:
            router = ServiceRouter(lab.ctx.store, ClusterConfig("lab", seed=seed))
            routes = [router.route(NS, "web", 8080, client_ip="127.0.0.9", mode=mode) for _ in range(60)]
            return [r.endpoint.pod if r.endpoint else None for r in routes]

        per_request = picks(7, "random")
        assert len(set(per_request)) == 3  # random for each request, affinity or not
        assert per_request == picks(7, "random")
        assert per_request != picks(8, "random")
        assert len(set(picks(7, None))) == 1  # the Service's own policy: pinned by ClientIP
        assert picks(7, "round-robin") == ["web-a", "web-c", "web-b"] * 20  # in pod IP order

    run(ctx, scenario)


def test_affinity_expires_after_its_timeout() -> None:
    now = [0.0]
    balancer = Balancer(clock=lambda: now[0])
    endpoints = [Endpoint(f"127.244.1.{i}", 8080, "127.0.0.1", 40000 + i, f"p{i}") for i in range(3)]
    policy = Policy("round-robin", affinity_timeout=10.0)
    key = (NS, "web", "")

    def pick(client: str) -> str | None:
        endpoint, mode = balancer.pick(key, endpoints, client, policy)
        assert mode == "client-ip"
        return endpoint.pod if endpoint else None

    assert [pick("a"), pick("b"), pick("a")] == ["p0", "p1", "p0"]
    now[0] = 9.0
    assert pick("a") == "p0"  # each connection renews the pin
    now[0] = 18.5
    assert pick("a") == "p0"
    now[0] = 29.0
    assert pick("a") == "p2"  # 10.5 s without a connection: picked again
    assert pick("b") == "p0"  # b's pin expired too
    assert balancer.pick(key, [], "a", policy) == (None, "client-ip")


def test_a_pinned_endpoint_that_goes_away_is_replaced() -> None:
    balancer = Balancer()
    endpoints = [Endpoint(f"127.244.1.{i}", 8080, "127.0.0.1", 40000 + i, f"p{i}") for i in range(3)]
    policy = Policy("round-robin", affinity_timeout=100.0)
    first, _ = balancer.pick((NS, "web", ""), endpoints, "a", policy)
    rest = [e for e in endpoints if e != first]
    again, _ = balancer.pick((NS, "web", ""), rest, "a", policy)
    assert again in rest
