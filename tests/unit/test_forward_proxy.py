"""Service discovery inside pods: the cluster's HTTP forward proxy (real sockets, real clients)
and the service environment variables the kubelet gives containers."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from labkit.embedded.forward_proxy import HttpProxy, parse_host
from labkit.embedded.kubelet.env import Environment, proxy_env, service_env
from labkit.embedded.kubelet.network import free_port
from labkit.embedded.kubeproxy.router import BALANCING_ANNOTATION
from labkit.embedded.runnable_images import Image, ImageConfig
from tests.unit.test_service_proxy import NAMESPACES, SERVICES, Lab


def run(tmp: Path, test: Callable[[Lab, HttpProxy], Awaitable[None]]) -> None:
    """Run ``test`` with a lab and a started proxy, cleaning up afterwards."""

    async def main() -> None:
        lab = Lab(tmp)
        proxy = HttpProxy(lab.store, lab.router)
        await proxy.start()
        try:
            await test(lab, proxy)
        finally:
            await proxy.close()
            await lab.close()
            lab.store.close()

    asyncio.run(main())


async def through(proxy_url: str, url: str, method: str = "GET") -> tuple[int, Any]:
    """One request through the proxy: (status, JSON body or text)."""
    async with aiohttp.ClientSession() as session, session.request(method, url, proxy=proxy_url) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def raw(port: int, request: bytes) -> bytes:
    """Send raw bytes to the proxy and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return answer


# -- routing by service name -----------------------------------------------------------------


def test_a_bare_service_name_reaches_an_endpoint_and_is_recorded(tmp_path: Path) -> None:
    async def test(lab: Lab, proxy: HttpProxy) -> None:
        names = await lab.web_service(2)
        status, body = await through(proxy.url_for("default"), "http://web/hello?x=1")
        assert status == 200, body
        assert body["pod"] in names
        assert (body["path"], body["host"]) == ("/hello?x=1", "web")
        assert "x-forwarded-for" not in body["headers"]  # transparent, as DNS and kube-proxy are
        (record,) = lab.router.records("default", "web")
        assert (record["via"], record["pod"], record["status"]) == ("http-proxy", body["pod"], 200)
        assert record["port"] == 80 and record["endpoint"].endswith(":8080")

    run(tmp_path, test)


def test_every_dns_form_of_the_name_and_the_callers_namespace(tmp_path: Path) -> None:
    async def test(lab: Lab, proxy: HttpProxy) -> None:
        await lab.web_service(1)
        lab.registry.create(NAMESPACES, None, {"metadata": {"name": "other"}})
        lab.pod("other-web", await lab.backend("other-web"), namespace="other")
        lab.service("web", [{"port": 80, "targetPort": 8080}], namespace="other")
        lab.endpoints("web", ["other-web"], namespace="other")
        here, there = proxy.url_for("default"), proxy.url_for("other")
        assert here != there and proxy.url_for("default") == here
        cases = {
            (here, "http://web/"): "web-0",
            (here, "http://web.default/"): "web-0",
            (here, "http://web.default.svc:80/"): "web-0",
            (here, "http://web.default.svc.cluster.local/"): "web-0",
            (here, "http://web.other/"): "other-web",
            (there, "http://web/"): "other-web",
            (there, "http://web.default.svc.cluster.local/"): "web-0",
        }
        for (proxy_url, url), pod in cases.items():
            status, body = await through(proxy_url, url)
            assert (status, body["pod"]) == (200, pod), (proxy_url, url, body)

    run(tmp_path, test)


def test_each_request_follows_the_services_balancing_mode(tmp_path: Path) -> None:
    async def test(lab: Lab, proxy: HttpProxy) -> None:
        names = await lab.web_service(3)

        def round_robin(obj: dict[str, Any]) -> None:
            obj["metadata"].setdefault("annotations", {})[BALANCING_ANNOTATION] = "round-robin"

        lab.registry.mutate(SERVICES, "default", "web", round_robin)
        served = []
        async with aiohttp.ClientSession() as session:  # one keep-alive connection to the proxy
            for _ in range(9):
                async with session.get("http://web/", proxy=proxy.url_for("default")) as response:
                    served.append((await response.json())["pod"])
        assert served == names * 3

    run(tmp_path, test)


def test_a_pod_ip_goes_to_the_pods_real_port(tmp_path: Path) -> None:
    async def test(lab: Lab, proxy: HttpProxy) -> None:
        ip = lab.pod("solo", await lab.backend("solo"))
        status, body = await through(proxy.url_for("default"), f"http://{ip}:8080/p")
        assert (status, body["pod"], body["path"]) == (200, "solo", "/p")

    run(tmp_path, test)


# -- what the proxy refuses ------------------------------------------------------------------


def test_unknown_service_port_and_empty_service_are_clear_errors(tmp_path: Path) -> None:
    async def test(lab: Lab, proxy: HttpProxy) -> None:
        await lab.web_service(1)
        lab.service("lonely", [{"port": 80, "targetPort": 8080}])
        url = proxy.url_for("default")
        status, text = await through(url, "http://nope/")
        assert status == 502 and 'service "nope" not found in namespace "default"' in text
        status, text = await through(url, "http://web:8081/")
        assert status == 502 and "service web in namespace default has no port 8081 (its ports: 80)" in text
        status, text = await through(url, "http://lonely/")
        assert status == 503 and "service lonely in namespace default has no ready endpoints" in text
        (record,) = lab.router.records("default", "lonely")
        assert record["outcome"] == "no-endpoints"

    run(tmp_path, test)


def test_hosts_outside_the_machine_are_refused(tmp_path: Path) -> None:
    async def test(lab: Lab, proxy: HttpProxy) -> None:
        url = proxy.url_for("default")
        for host in ("example.com", "10.1.2.3", "web.no-such-namespace", "[2001:db8::1]"):
            status, text = await through(url, f"http://{host}/")
            assert status == 403, (host, text)
            assert "labkit's cluster proxy only reaches" in text, text

    run(tmp_path, test)


def test_requests_that_are_not_proxy_requests(tmp_path: Path) -> None:
    async def test(lab: Lab, proxy: HttpProxy) -> None:
        port = int(proxy.url_for("default").rsplit(":", 1)[1])
        answer = await raw(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400")
        assert b"labkit's HTTP proxy for namespace default" in answer
        answer = await raw(port, b"CONNECT web:443 HTTP/1.1\r\nHost: web:443\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 501")
        assert b"plain http only" in answer

    run(tmp_path, test)


def test_endpoint_that_does_not_answer_is_502(tmp_path: Path) -> None:
    async def test(lab: Lab, proxy: HttpProxy) -> None:
        ip = lab.pod("dead", free_port())
        lab.service("web", [{"port": 80, "targetPort": 8080}])
        lab.endpoints("web", ["dead"])
        status, text = await through(proxy.url_for("default"), "http://web/")
        assert status == 502
        assert (
            f"endpoint {ip}:8080 (pod dead) did not answer: dial tcp {ip}:8080: connect: connection refused"
            in text
        )

    run(tmp_path, test)


def test_a_python_app_calls_a_service_by_name_through_the_proxy_env(tmp_path: Path) -> None:
    """What a pod's process does: urllib honours HTTP_PROXY, and NO_PROXY keeps loopback direct."""

    async def test(lab: Lab, proxy: HttpProxy) -> None:
        names = await lab.web_service(1)
        direct = await lab.backend("direct")
        code = (
            "import json, urllib.request\n"
            "by_name = json.load(urllib.request.urlopen('http://web/by-name', timeout=5))\n"
            f"local = json.load(urllib.request.urlopen('http://127.0.0.1:{direct}/local', timeout=5))\n"
            "print(by_name['pod'], local['pod'], 'via' in by_name['headers'])\n"
        )
        env = {"PATH": os.environ.get("PATH", ""), **proxy_env(proxy.url_for("default"))}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0, err.decode()
        assert out.decode().split() == [names[0], "direct", "False"]
        assert len(lab.router.records("default", "web")) == 1  # the loopback call did not go through it

    run(tmp_path, test)


# -- host names as a pod's resolver reads them -----------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("web", ("ns1", "web")),
        ("WEB", ("ns1", "web")),
        ("web.ns2", ("ns2", "web")),
        ("web.unknown", None),
        ("web.ns2.svc", ("ns2", "web")),
        ("web.ns2.svc.cluster.local", ("ns2", "web")),
        ("web.ns2.svc.cluster.local.", ("ns2", "web")),
        ("web.ns2.svc.example.org", None),
        ("web..svc", None),
        ("pypi.org", None),
    ],
)
def test_parse_host(host: str, expected: tuple[str, str] | None) -> None:
    assert parse_host(host, "ns1", lambda ns: ns in ("ns1", "ns2")) == expected


# -- service environment variables -----------------------------------------------------------


def test_service_env_names_and_values_as_kubelet_makes_them(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    lab.service(
        "posts-srv",
        [
            {"name": "http", "port": 8080, "targetPort": 80},
            {"name": "metrics-port", "port": 9090, "protocol": "UDP"},
        ],
    )
    lab.service("headless", [{"port": 80}], clusterIP="None")
    lab.registry.create(NAMESPACES, None, {"metadata": {"name": "other"}})
    lab.service("elsewhere", [{"port": 80}], namespace="other")
    svc = lab.store.find("core/services", "default", "posts-srv")
    kube = lab.store.find("core/services", "default", "kubernetes")
    assert svc is not None and kube is not None
    ip, kube_ip = svc["spec"]["clusterIP"], kube["spec"]["clusterIP"]
    env = service_env(lab.store, "default")
    posts = {k: v for k, v in env.items() if k.startswith("POSTS_SRV_")}
    assert posts == {
        "POSTS_SRV_SERVICE_HOST": ip,
        "POSTS_SRV_SERVICE_PORT": "8080",
        "POSTS_SRV_SERVICE_PORT_HTTP": "8080",
        "POSTS_SRV_SERVICE_PORT_METRICS_PORT": "9090",
        "POSTS_SRV_PORT": f"tcp://{ip}:8080",
        "POSTS_SRV_PORT_8080_TCP": f"tcp://{ip}:8080",
        "POSTS_SRV_PORT_8080_TCP_PROTO": "tcp",
        "POSTS_SRV_PORT_8080_TCP_PORT": "8080",
        "POSTS_SRV_PORT_8080_TCP_ADDR": ip,
        "POSTS_SRV_PORT_9090_UDP": f"udp://{ip}:9090",
        "POSTS_SRV_PORT_9090_UDP_PROTO": "udp",
        "POSTS_SRV_PORT_9090_UDP_PORT": "9090",
        "POSTS_SRV_PORT_9090_UDP_ADDR": ip,
    }
    assert env["KUBERNETES_SERVICE_HOST"] == kube_ip and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert not any(k.startswith(("HEADLESS_", "ELSEWHERE_")) for k in env)
    other = service_env(lab.store, "other")
    assert other["ELSEWHERE_SERVICE_PORT"] == "80" and "KUBERNETES_SERVICE_HOST" in other
    assert "POSTS_SRV_SERVICE_HOST" not in other
    unlinked = service_env(lab.store, "default", links=False)
    assert {k.split("_")[0] for k in unlinked} == {"KUBERNETES"}
    lab.store.close()


def test_container_environment_layers_links_proxy_and_pod_env(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    lab.service("db", [{"port": 5432}])
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {"enableServiceLinks": True}}
    image = Image("busybox:1", "sha256:" + "0" * 64, ImageConfig(env=(("DB_SERVICE_PORT", "1"),)))
    container = {
        "name": "c",
        "env": [
            {"name": "DB_URL", "value": "postgres://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)/app"},
            {"name": "no_proxy", "value": "localhost,127.0.0.1,internal"},
        ],
    }
    env, _ = Environment(lab.store, pod, "n", "127.244.0.9", "127.0.0.1", "http://127.0.0.1:4000").build(
        container, image, 41000
    )
    host = env["DB_SERVICE_HOST"]
    assert env["DB_URL"] == f"postgres://{host}:5432/app"
    assert env["DB_SERVICE_PORT"] == "5432"  # the cluster's value wins over the image's
    assert env["HTTP_PROXY"] == env["http_proxy"] == "http://127.0.0.1:4000"
    assert env["NO_PROXY"] == "localhost,127.0.0.1" and env["no_proxy"] == "localhost,127.0.0.1,internal"
    pod["spec"]["enableServiceLinks"] = False
    env, _ = Environment(lab.store, pod, "n", "127.244.0.9", "127.0.0.1").build(container, image, 41000)
    assert "DB_SERVICE_HOST" not in env and "HTTP_PROXY" not in env
    assert env["DB_URL"] == "postgres://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)/app"  # as kubelet: unknown
    lab.store.close()
