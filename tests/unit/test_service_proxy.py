"""The API server's ``proxy`` subresource of services and pods, and the traffic records API,
with a real API server, real backends on loopback ports and an in-process store."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from labkit.embedded.apiserver.app import build_app
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.bootstrap import bootstrap
from labkit.embedded.kubelet.network import PORTS_ANNOTATION, free_port
from labkit.embedded.kubeproxy.router import ServiceRouter
from labkit.embedded.resources import lookup
from labkit.embedded.state import ClusterConfig
from labkit.embedded.store import Store

PODS = lookup("", "v1", "pods")
SERVICES = lookup("", "v1", "services")
ENDPOINTS = lookup("", "v1", "endpoints")
NAMESPACES = lookup("", "v1", "namespaces")
assert PODS and SERVICES and ENDPOINTS and NAMESPACES
TOKEN = "test-token"
NODE = "t-control-plane"
POD_KEY = web.AppKey("pod", str)


async def echo(request: web.Request) -> web.StreamResponse:
    """A backend answer that shows what arrived: pod, method, path, query, headers, body."""
    pod = request.app[POD_KEY]
    if request.path == "/cookies":
        response = web.Response(text="cookies")
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["X-Private"] = "dropped"
        response.headers["Connection"] = "X-Private"
        return response
    if request.path == "/stream":
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(3):
            await response.write(f"part{i}\n".encode())
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response
    if request.path == "/slow":
        await asyncio.sleep(30)
    body = await request.read()
    answer = {
        "pod": pod,
        "method": request.method,
        "path": request.raw_path,
        "host": request.headers.get("Host"),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": body.decode(),
    }
    return web.json_response(answer, status=201 if request.method == "POST" else 200)


class Lab:
    """A store with pods, services and endpoints; backend processes stand in for pods."""

    def __init__(self, tmp: Path) -> None:
        self.store = Store(tmp / "store.db")
        self.registry = Registry(self.store)
        bootstrap(self.registry, "t", 1)
        self.router = ServiceRouter(self.store, ClusterConfig("t", nodes=1, seed=7))
        self.store.add_listener(self.router.notify)
        self.runners: list[web.AppRunner] = []
        self.next_ip = 2

    async def backend(self, pod: str) -> int:
        """Start a backend answering as ``pod``; its port."""
        app = web.Application()
        app[POD_KEY] = pod
        app.router.add_route("*", "/{rest:.*}", echo)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.runners.append(runner)
        return port

    def pod(self, name: str, real_port: int, namespace: str = "default", app: str = "web") -> str:
        """A running pod (containerPort 8080 named http, really on ``real_port``); its IP."""
        ip = f"127.244.0.{self.next_ip}"
        self.next_ip += 1
        body = {
            "metadata": {
                "name": name,
                "labels": {"app": app},
                "annotations": {PORTS_ANNOTATION: json.dumps({"app": {"8080": real_port}})},
            },
            "spec": {
                "nodeName": NODE,
                "containers": [
                    {"name": "app", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}
                ],
            },
        }
        self.registry.create(PODS, namespace, body)

        def running(obj: dict[str, Any]) -> None:
            obj["status"].update({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]})

        self.registry.mutate(PODS, namespace, name, running, subresource="status")
        return ip

    def service(
        self, name: str, ports: list[dict[str, Any]], namespace: str = "default", **spec: Any
    ) -> None:
        """A ClusterIP Service selecting ``app=<name>``."""
        body = {"metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": ports, **spec}}
        self.registry.create(SERVICES, namespace, body)

    def endpoints(self, name: str, pods: list[str], port_name: str = "", namespace: str = "default") -> None:
        """The Endpoints of a Service: ``pods`` ready, on containerPort 8080."""
        addresses = []
        for pod in pods:
            obj = self.store.find("core/pods", namespace, pod)
            assert obj is not None
            ref = {"kind": "Pod", "namespace": namespace, "name": pod, "uid": obj["metadata"]["uid"]}
            addresses.append({"ip": obj["status"]["podIP"], "nodeName": NODE, "targetRef": ref})
        port: dict[str, Any] = {"port": 8080, "protocol": "TCP"}
        if port_name:
            port["name"] = port_name
        subsets = [{"addresses": addresses, "ports": [port]}] if addresses else []
        body = {"metadata": {"name": name}, "subsets": subsets}
        if self.store.find("core/endpoints", namespace, name) is None:
            self.registry.create(ENDPOINTS, namespace, body)
        else:

            def replace(obj: dict[str, Any]) -> None:
                obj["subsets"] = subsets

            self.registry.mutate(ENDPOINTS, namespace, name, replace)

    async def web_service(self, replicas: int = 3, port_name: str = "") -> list[str]:
        """Service ``web`` (port 80 → 8080) with ``replicas`` ready pods; their names."""
        names = [f"web-{i}" for i in range(replicas)]
        for name in names:
            self.pod(name, await self.backend(name))
        port: dict[str, Any] = {"port": 80, "targetPort": 8080}
        if port_name:
            port["name"] = port_name
        self.service("web", [port])
        self.endpoints("web", names, port_name)
        return names

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


class Api:
    """The API server on a loopback port, and a client that sends the token."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.runner = web.AppRunner(build_app(lab.registry, TOKEN, router=lab.router), access_log=None)
        self.base = ""
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.base = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})

    async def call(
        self, method: str, path: str, data: bytes | None = None, **kwargs: Any
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        """(status, parsed JSON body or text, headers)."""
        assert self.session is not None
        async with self.session.request(
            method, self.base + path, data=data, allow_redirects=False, **kwargs
        ) as response:
            text = await response.text()
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            return response.status, body, response.headers

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        await self.runner.cleanup()


def run(tmp: Path, test: Callable[[Lab, Api], Awaitable[None]]) -> None:
    """Run ``test`` with a lab and its API server, cleaning up afterwards."""

    async def main() -> None:
        lab = Lab(tmp)
        api = Api(lab)
        await api.start()
        try:
            await test(lab, api)
        finally:
            await api.close()
            await lab.close()
            lab.store.close()

    asyncio.run(main())


PROXY = "/api/v1/namespaces/default/services"


def assert_status(status: int, body: Any, code: int, reason: str, message: str) -> None:
    """An answer with HTTP status ``code`` whose body is the matching failure Status."""
    assert status == code, body
    assert isinstance(body, dict) and body.get("kind") == "Status", body
    assert (body["code"], body["reason"], body["message"]) == (code, reason, message), body


# -- the service proxy -----------------------------------------------------------------------


def test_get_reaches_an_endpoint_with_path_query_and_without_the_token(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        names = await lab.web_service()
        status, body, _ = await api.call("GET", f"{PROXY}/web:80/proxy/hello/a%2Fb?x=1&y=2")
        assert status == 200, body
        assert body["pod"] in names
        assert body["path"] == "/hello/a%2Fb?x=1&y=2"
        assert "authorization" not in body["headers"]
        assert body["headers"]["x-forwarded-for"] == "127.0.0.1"
        records = lab.router.records("default", "web")
        assert len(records) == 1
        assert records[0]["via"] == "apiserver-proxy" and records[0]["pod"] == body["pod"]
        assert records[0]["status"] == 200 and records[0]["mode"] == "random"
        assert records[0]["endpoint"].endswith(":8080")

    run(tmp_path, test)


def test_each_request_picks_a_random_ready_endpoint(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        names = await lab.web_service(3)
        served = []
        for _ in range(60):
            status, body, _ = await api.call("GET", f"{PROXY}/web/proxy/")
            assert status == 200, body
            served.append(body["pod"])
        counts = {name: served.count(name) for name in names}
        assert all(5 <= n <= 35 for n in counts.values()), counts  # one keep-alive client, yet spread
        recorded = [r["pod"] for r in lab.router.records("default", "web")]
        assert recorded == served

    run(tmp_path, test)


def test_port_by_name_and_scheme_prefix(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        await lab.web_service(1, port_name="http")
        for ident in ("web:http", "web:80", "http:web:http", "web"):
            status, body, _ = await api.call("GET", f"{PROXY}/{ident}/proxy/x")
            assert status == 200, (ident, body)
            assert body["path"] == "/x"

    run(tmp_path, test)


def test_methods_and_bodies_are_forwarded(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        await lab.web_service(1)
        status, body, _ = await api.call(
            "POST", f"{PROXY}/web:80/proxy/items", b'{"a": 1}', headers={"Content-Type": "application/json"}
        )
        assert status == 201 and body["method"] == "POST" and body["body"] == '{"a": 1}', body
        assert body["headers"]["content-type"] == "application/json"
        for method in ("PUT", "PATCH", "DELETE"):
            status, body, _ = await api.call(method, f"{PROXY}/web:80/proxy/items/1", b"x" * 100_000)
            assert status == 200 and body["method"] == method and len(body["body"]) == 100_000
        status, body, headers = await api.call("HEAD", f"{PROXY}/web:80/proxy/")
        assert status == 200 and body == ""
        assert int(headers["Content-Length"]) > 0

    run(tmp_path, test)


def test_answer_headers_without_hop_by_hop_and_cors_and_streamed_bodies(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        await lab.web_service(1)
        status, body, headers = await api.call("GET", f"{PROXY}/web:80/proxy/cookies")
        assert status == 200 and body == "cookies"
        assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
        assert "Access-Control-Allow-Origin" not in headers and "X-Private" not in headers
        status, body, _ = await api.call("GET", f"{PROXY}/web:80/proxy/stream")
        assert (status, body) == (200, "part0\npart1\npart2\n")

    run(tmp_path, test)


def test_path_ending_at_proxy_redirects_like_upstream(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        await lab.web_service(1)
        status, _, headers = await api.call("GET", f"{PROXY}/web:80/proxy?a=1")
        assert status == 301
        assert headers["Location"] == f"{PROXY}/web:80/proxy/?a=1"
        assert lab.router.records("default", "web") == []

    run(tmp_path, test)


def test_no_ready_endpoints_is_503_in_upstream_wording(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        lab.service("lonely", [{"port": 80, "targetPort": 8080}])
        status, body, _ = await api.call("GET", f"{PROXY}/lonely:80/proxy/")
        assert_status(status, body, 503, "ServiceUnavailable", 'no endpoints available for service "lonely"')
        names = await lab.web_service(2)
        lab.endpoints("web", [])  # every pod turned not ready
        status, body, _ = await api.call("GET", f"{PROXY}/web/proxy/")
        assert_status(status, body, 503, "ServiceUnavailable", 'no endpoints available for service "web"')
        lab.endpoints("web", names[1:])
        for _ in range(10):
            status, body, _ = await api.call("GET", f"{PROXY}/web/proxy/")
            assert (status, body["pod"]) == (200, names[1])

    run(tmp_path, test)


def test_unknown_service_port_or_bad_name(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        await lab.web_service(1)
        status, body, _ = await api.call("GET", f"{PROXY}/nothere:80/proxy/")
        assert_status(status, body, 404, "NotFound", 'services "nothere" not found')
        status, body, _ = await api.call("GET", f"{PROXY}/web:81/proxy/")
        assert_status(status, body, 503, "ServiceUnavailable", 'no service port 81 found for service "web"')
        status, body, _ = await api.call("GET", f"{PROXY}/ftp:web:80/proxy/")
        assert_status(status, body, 400, "BadRequest", 'invalid service request "ftp:web:80"')
        status, body, _ = await api.call("GET", f"{PROXY}/a:b:c:d/proxy/")
        assert_status(status, body, 400, "BadRequest", 'invalid service request "a:b:c:d"')

    run(tmp_path, test)


def test_endpoint_that_does_not_answer_is_503_and_recorded(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        ip = lab.pod("dead", free_port())  # nothing listens on its real port
        lab.service("web", [{"port": 80, "targetPort": 8080}])
        lab.endpoints("web", ["dead"])
        status, body, _ = await api.call("GET", f"{PROXY}/web:80/proxy/")
        assert_status(
            status,
            body,
            503,
            "ServiceUnavailable",
            f"error trying to reach service: dial tcp {ip}:8080: connect: connection refused",
        )
        (record,) = lab.router.records("default", "web")
        assert (record["pod"], record["outcome"]) == ("dead", "connect-failed")

    run(tmp_path, test)


def test_proxy_survives_a_client_that_leaves_mid_request(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        await lab.web_service(1)
        with_timeout = aiohttp.ClientTimeout(total=0.3)
        try:
            await api.call("GET", f"{PROXY}/web:80/proxy/slow", timeout=with_timeout)
        except asyncio.TimeoutError:
            pass
        status, body, _ = await api.call("GET", f"{PROXY}/web:80/proxy/after")
        assert (status, body["path"]) == (200, "/after")
        deadline = time.monotonic() + 3
        while lab.router.records("default", "web")[0]["status"] != 499:  # the wait was given up
            assert time.monotonic() < deadline, lab.router.records("default", "web")
            await asyncio.sleep(0.05)

    run(tmp_path, test)


def test_pod_proxy_goes_to_the_pods_real_port(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        lab.pod("solo", await lab.backend("solo"))
        pods = "/api/v1/namespaces/default/pods"
        for ident in ("solo", "solo:8080", "http:solo:8080", "solo:http"):
            status, body, _ = await api.call("GET", f"{pods}/{ident}/proxy/p?q=1")
            assert status == 200, (ident, body)
            assert (body["pod"], body["path"]) == ("solo", "/p?q=1")
        status, body, _ = await api.call("GET", f"{pods}/nobody/proxy/")
        assert_status(status, body, 404, "NotFound", 'pods "nobody" not found')
        status, body, _ = await api.call("GET", f"{pods}/solo:metrics/proxy/")
        assert_status(status, body, 400, "BadRequest", 'pod "solo" has no containerPort named "metrics"')

    run(tmp_path, test)


# -- the traffic records API -----------------------------------------------------------------

RECORDS = "/apis/traffic.labkit.dev/v1/namespaces/default/services/web/records"


def test_records_api_lists_filters_by_time_and_clears(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        await lab.web_service(2)
        for _ in range(3):
            await api.call("GET", f"{PROXY}/web/proxy/")
        middle = time.time()
        for _ in range(2):
            await api.call("GET", f"{PROXY}/web/proxy/")
        status, body, _ = await api.call("GET", RECORDS)
        assert status == 200
        assert (body["kind"], body["apiVersion"]) == ("TrafficRecordList", "traffic.labkit.dev/v1")
        assert len(body["items"]) == 5
        assert {i["pod"] for i in body["items"]} <= {"web-0", "web-1"}
        status, body, _ = await api.call("GET", f"{RECORDS}?since={middle}")
        assert len(body["items"]) == 2
        status, body, _ = await api.call("DELETE", RECORDS)
        assert status == 200 and body["status"] == "Success"
        status, body, _ = await api.call("GET", RECORDS)
        assert body["items"] == []

    run(tmp_path, test)


def test_records_api_bad_input(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        await lab.web_service(1)
        status, body, _ = await api.call("GET", f"{RECORDS}?since=yesterday")
        assert status == 400
        assert 'invalid since "yesterday"' in body["message"]
        status, body, _ = await api.call(
            "GET", "/apis/traffic.labkit.dev/v1/namespaces/default/services/nope/records"
        )
        assert_status(status, body, 404, "NotFound", 'services "nope" not found')
        status, body, _ = await api.call("POST", RECORDS)
        assert status == 405
        assert api.session is not None
        async with aiohttp.ClientSession() as anonymous, anonymous.get(api.base + RECORDS) as response:
            assert response.status == 401

    run(tmp_path, test)


def test_discovery_lists_proxy_subresources_but_not_the_traffic_group(tmp_path: Path) -> None:
    async def test(lab: Lab, api: Api) -> None:
        _, core, _ = await api.call("GET", "/api/v1")
        entries = {r["name"]: r for r in core["resources"]}
        assert entries["services/proxy"]["kind"] == "ServiceProxyOptions"
        assert entries["pods/proxy"]["kind"] == "PodProxyOptions"
        assert entries["services/proxy"]["verbs"] == ["create", "delete", "get", "patch", "update"]
        _, groups, _ = await api.call("GET", "/apis")
        assert "traffic.labkit.dev" not in {g["name"] for g in groups["groups"]}
        accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        _, aggregated, _ = await api.call("GET", "/apis", headers={"Accept": accept})
        assert "traffic.labkit.dev" not in {i["metadata"].get("name") for i in aggregated["items"]}

    run(tmp_path, test)
