"""The cluster's HTTP forward proxy: how a pod calls a Service by its name.

On a real cluster, ``http://b-srv:8080/`` works inside a pod because cluster DNS resolves the
name to the Service's cluster IP. Here pods are local processes that use the host's resolver,
so the kubelet gives every container ``HTTP_PROXY``/``http_proxy`` pointing at this proxy, and
``NO_PROXY``/``no_proxy=localhost,127.0.0.1`` so loopback calls stay direct. Every HTTP client
that honours those variables (urllib, requests, httpx, aiohttp with ``trust_env``, curl, wget,
Go) then sends ``GET http://b-srv:8080/ HTTP/1.1`` here, and the proxy routes it.

**Which namespace.** Each namespace gets its own listener on ``127.0.0.1:<free port>``, opened
when its first container starts (:meth:`HttpProxy.url_for`); the port a request arrives on
tells the caller's namespace, so no header or client support is needed.

**Which host.** As cluster DNS with a pod's search path would resolve it:

- ``NAME``, ``NAME.NS`` (when namespace NS exists), ``NAME.NS.svc``,
  ``NAME.NS.svc.cluster.local``: Service NAME (in the caller's namespace for a bare name);
  the URL's port (80 if none) must be one of its ports; a headless Service's port is the pods'.
  Each request goes to one ready endpoint, picked per request by the Service's balancing mode,
  and is recorded with ``via: "http-proxy"``.
- a loopback address (a cluster IP, a pod IP, ``127.0.0.1``): that address; a pod IP with a
  containerPort goes to the port that pod's process really listens on.
- anything else (another address, an outside name): 403. The lab never leaves the machine.

**Answers of its own** (``text/plain``, naming what was asked): 502 for an unknown Service or a
port it does not have, 503 when it has no ready endpoint, 502 when the endpoint does not answer,
403 for a host outside the machine, 400 for a request that is not a proxy request, 501 for
``CONNECT`` (the proxy carries plain HTTP only).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from yarl import URL

from labkit.embedded.apiserver.service_proxy import Relay, UnreachableError, client_of, endpoint_text
from labkit.embedded.kubeproxy.router import Endpoint, Record, ServiceRouter, ServiceView
from labkit.embedded.kubeproxy.table import is_loopback
from labkit.embedded.store import Store
from labkit.shared.podports import pod_address

log = logging.getLogger("labkit.httpproxy")
CLUSTER_DOMAIN = "cluster.local"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProxyRefusalError(Exception):
    """A request the proxy answers itself: an HTTP status and a text explaining it."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def parse_host(host: str, caller: str, namespaces: Callable[[str], bool]) -> tuple[str, str] | None:
    """``(namespace, service)`` if ``host`` names a Service as a pod's resolver would read it
    (``namespaces(ns)`` tells whether a namespace exists), else None."""
    labels = host.rstrip(".").lower().split(".")
    if any(not label for label in labels):
        return None
    if len(labels) == 1:
        return caller, labels[0]
    if len(labels) == 2 and namespaces(labels[1]):
        return labels[1], labels[0]
    if len(labels) == 3 and labels[2] == "svc":
        return labels[1], labels[0]
    if len(labels) == 5 and labels[2] == "svc" and ".".join(labels[3:]) == CLUSTER_DOMAIN:
        return labels[1], labels[0]
    return None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class HttpProxy:
    """The forward proxy: one listener per namespace, all served by one aiohttp application;
    ``router`` picks Services' endpoints and keeps the traffic record."""

    def __init__(self, store: Store, router: ServiceRouter, relay: Relay | None = None) -> None:
        self.store = store
        self.router = router
        self.relay = relay or Relay()
        self.ports: dict[str, int] = {}  # namespace → port
        self._namespaces: dict[int, str] = {}  # port → namespace
        self._runner: web.AppRunner | None = None
        self._starting: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Get ready to open listeners (no port is open until a namespace asks for one)."""

        @web.middleware
        async def connect_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                if request.method == "CONNECT":
                    raise ProxyRefusalError(
                        501,
                        f"CONNECT {request.raw_path}: labkit's cluster proxy carries plain http only; "
                        "call the service with http:// (inside the cluster, traffic is not encrypted)",
                    )
                return await handler(request)
            except ProxyRefusalError as e:
                return web.Response(status=e.status, text=e.text + "\n")

        app = web.Application(middlewares=[connect_guard])
        app.router.add_route("*", "/{rest:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()

    def url_for(self, namespace: str) -> str:
        """The proxy URL for pods of ``namespace`` (its listener opens on first use)."""
        port = self.ports.get(namespace)
        if port is None:
            port = self._open(namespace)
        return f"http://127.0.0.1:{port}"

    def _open(self, namespace: str) -> int:
        assert self._runner is not None, "HttpProxy.start() first"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # connections wait in the backlog until the site below serves them
        sock.setblocking(False)
        port = int(sock.getsockname()[1])
        self.ports[namespace], self._namespaces[port] = port, namespace
        task = asyncio.get_running_loop().create_task(web.SockSite(self._runner, sock).start())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)
        log.info("http proxy for namespace %s on 127.0.0.1:%d", namespace, port)
        return port

    async def close(self) -> None:
        """Stop every listener and drop pooled connections."""
        if self._starting:
            await asyncio.gather(*self._starting, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        await self.relay.close()

    # -- one request ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        namespace = self._namespaces.get(int(sockname[1]) if sockname else 0, "default")
        url = request.url
        if not request.raw_path.lower().startswith("http://") or not url.host:
            raise ProxyRefusalError(
                400,
                f"this is labkit's HTTP proxy for namespace {namespace}: send requests through it "
                "(HTTP_PROXY), e.g. http://<service>:<port>/path",
            )
        port = url.port or 80
        ip = _ip(url.host)
        if ip is not None or url.host.lower() == "localhost":
            host = "127.0.0.1" if ip is None else str(ip)
            return await self._to_address(request, url, host, port)
        found = parse_host(url.host, namespace, self._namespace_exists)
        if found is None:
            raise ProxyRefusalError(
                403,
                f"{url.host}: not a service of this cluster, and labkit's cluster proxy only "
                "reaches services inside the cluster (names like <service>, "
                "<service>.<namespace> or <service>.<namespace>.svc.cluster.local)",
            )
        return await self._to_service(request, url, found[0], found[1], port)

    def _namespace_exists(self, name: str) -> bool:
        return self.store.find("core/namespaces", "", name) is not None

    async def _to_service(
        self, request: web.Request, url: URL, namespace: str, name: str, port: int
    ) -> web.StreamResponse:
        what = f"service {name} in namespace {namespace}"
        view = self.router.view(namespace, name)
        if view is None:
            raise ProxyRefusalError(502, f'service "{name}" not found in namespace "{namespace}"')
        if view.type == "ExternalName":
            raise ProxyRefusalError(
                403,
                f"{what} is of type ExternalName: it names a host outside the cluster, "
                "and labkit's cluster proxy does not leave this machine",
            )
        wanted = _headless_port(view, port) if view.cluster_ip is None else port
        if wanted is None or view.port(wanted) is None:
            have = ", ".join(str(p.port) for p in view.ports) or "none"
            raise ProxyRefusalError(502, f"{what} has no port {port} (its ports: {have})")
        route = self.router.route(namespace, name, wanted, request.remote or "")
        record = self.router.record(route, client_of(request), "http-proxy")
        if route.endpoint is None:
            raise ProxyRefusalError(503, f"{what} has no ready endpoints (no ready pod matches its selector)")
        return await self._forward(request, url, route.endpoint, record, f"service {name}")

    async def _to_address(self, request: web.Request, url: URL, host: str, port: int) -> web.StreamResponse:
        if not is_loopback(host):
            raise ProxyRefusalError(
                403,
                f"{host}: outside this machine; labkit's cluster proxy only reaches loopback "
                "addresses (services, pods) inside the lab",
            )
        pod = self._pod_with_ip(host)
        real = pod_address(pod, port) if pod is not None else (host, port)
        assert real is not None
        name = pod["metadata"]["name"] if pod is not None else ""
        node = pod.get("spec", {}).get("nodeName", "") if pod is not None else ""
        endpoint = Endpoint(host, port, real[0], real[1], name or None, node or None)
        return await self._forward(request, url, endpoint, None, f"{host}:{port}")

    def _pod_with_ip(self, ip: str) -> dict[str, Any] | None:
        pods, _ = self.store.list("core/pods")
        return next((p for p in pods if (p.get("status") or {}).get("podIP") == ip), None)

    async def _forward(
        self, request: web.Request, url: URL, endpoint: Endpoint, record: Record | None, what: str
    ) -> web.StreamResponse:
        target = URL(f"http://{endpoint.host}:{endpoint.real_port}{url.raw_path_qs}", encoded=True)
        try:
            return await self.relay.forward(request, target, endpoint, record, forwarded_for=False)
        except UnreachableError as e:
            pod = f" (pod {endpoint.pod})" if endpoint.pod else ""
            raise ProxyRefusalError(
                502, f"{what}: endpoint {endpoint_text(endpoint)}{pod} did not answer: {e}"
            ) from None


def _headless_port(view: ServiceView, port: int) -> str | int | None:
    """The Service port that a call to a headless Service's pods on ``port`` belongs to."""
    for item in view.ports:
        if any(e.port == port for e in view.endpoints.get(item.name, ())):
            return item.name
    return port if view.port(port) is not None else None
