"""The API server as an HTTP proxy to Services and Pods, and the traffic records API.

**Service proxy.** ``/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH`` forwards
the request (any method, with its query, headers and body) to ONE ready endpoint of the
Service, chosen at random for every request as kube-apiserver does, and streams the answer
back: status, headers (without hop-by-hop and CORS headers) and body. ``PORT`` is a service
port's name or number; without it the endpoints' unnamed port is used, so a Service whose only
port is named needs the name, as upstream. ``SCHEME`` is ``http`` (default) or ``https`` (the
pod's certificate is not checked). Errors use upstream's wording: 503 ``no endpoints available
for service "NAME"`` when nothing is ready, 503 ``error trying to reach service: ...`` when the
chosen endpoint does not answer. ``/api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy/PATH``
does the same for one pod (default port: its first containerPort). Every request served
through a Service is recorded with ``via: "apiserver-proxy"``.

**Traffic records** (labkit's own API; not listed in discovery, token-guarded like the rest)::

    GET    /apis/traffic.labkit.dev/v1/namespaces/NS/services/NAME/records[?since=UNIX_SECONDS]
    DELETE /apis/traffic.labkit.dev/v1/namespaces/NS/services/NAME/records

GET answers ``{"kind": "TrafficRecordList", "apiVersion": "traffic.labkit.dev/v1",
"metadata": {"namespace": NS, "name": NAME}, "items": [...]}`` with one item per connection or
request the cluster routed to the Service (which pod and node served it, how it came in, when),
oldest first, only those after ``since`` when given. DELETE forgets them (a Status answers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from labkit.embedded.apiserver import routing
from labkit.embedded.apiserver.status import ApiError, bad_request, method_not_allowed, not_found
from labkit.embedded.kubeproxy.router import (
    CONNECT_FAILED,
    RANDOM,
    Endpoint,
    Record,
    Route,
    ServiceRouter,
    no_endpoints,
)
from labkit.embedded.kubeproxy.table import is_loopback
from labkit.embedded.resources import lookup
from labkit.embedded.store import Store
from labkit.shared.contract import TRAFFIC_GROUP_VERSION
from labkit.shared.podports import pod_address

SERVICES = lookup("", "v1", "services")
PODS = lookup("", "v1", "pods")
assert SERVICES is not None and PODS is not None
log = logging.getLogger("labkit.proxy")

PROXY_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
CORS_HEADERS = frozenset(
    {
        "access-control-allow-credentials",
        "access-control-allow-headers",
        "access-control-allow-methods",
        "access-control-allow-origin",
    }
)
CLIENT_CHECK = 0.5  # seconds between checks that a client waiting for an answer is still there
CLIENT_CLOSED = 499  # what the record says of a request whose client left before the answer
TRAFFIC_PREFIX = f"/apis/{TRAFFIC_GROUP_VERSION}"
PROXY_SEGMENT = 7  # "", api, v1, namespaces, NS, services|pods, NAME, proxy


class UnreachableError(Exception):
    """The endpoint did not answer (refused, timed out, reset before a response)."""


def split_scheme_name_port(text: str) -> tuple[str, str, str] | None:
    """``name``, ``name:port`` or ``scheme:name:port`` → (scheme, name, port); None if invalid."""
    parts = text.split(":")
    if len(parts) > 3:
        return None
    scheme = parts[0] if len(parts) == 3 else ""
    name = parts[-2] if len(parts) == 3 else parts[0]
    port = parts[-1] if len(parts) >= 2 else ""
    if not name or scheme not in ("", "http", "https"):
        return None
    return scheme, name, port


def pod_endpoint(store: Store, namespace: str, ident: str) -> tuple[str, Endpoint]:
    """Where ``pods/IDENT/proxy`` goes: (scheme, endpoint); raises the ApiError upstream answers."""
    parsed = split_scheme_name_port(ident)
    if parsed is None:
        raise bad_request(f'invalid pod request "{ident}"')
    scheme, name, port = parsed
    pod = store.find(PODS.key, namespace, name)
    if pod is None:
        raise not_found(PODS, name)
    ports = [p for c in pod.get("spec", {}).get("containers") or [] for p in c.get("ports") or []]
    if not port:
        port = str(ports[0]["containerPort"]) if ports else "80"
    if not port.isdigit():
        named = next((p["containerPort"] for p in ports if p.get("name") == port), None)
        if named is None:
            raise bad_request(f'pod "{name}" has no containerPort named "{port}"')
        port = str(named)
    ip = str((pod.get("status") or {}).get("podIP") or "")
    if not is_loopback(ip):
        raise bad_request("address not allowed")
    real = pod_address(pod, int(port))
    assert real is not None  # a number always has an address
    return scheme or "http", Endpoint(ip, int(port), real[0], real[1], name, pod["spec"].get("nodeName"))


def forwarded_headers(
    request: web.Request, drop: frozenset[str] = frozenset(), forwarded_for: bool = True
) -> list[tuple[str, str]]:
    """The request headers to send on: without hop-by-hop ones, those the Connection header
    names, and ``drop``; with the client added to X-Forwarded-For if ``forwarded_for``."""
    named = {h.strip().lower() for h in request.headers.get("Connection", "").split(",") if h.strip()}
    skip = HOP_BY_HOP | named | drop | ({"x-forwarded-for"} if forwarded_for else set())
    out = [(k, v) for k, v in request.headers.items() if k.lower() not in skip]
    if forwarded_for:
        prior = request.headers.get("X-Forwarded-For")
        client = request.remote or ""
        out.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
    return out


def endpoint_text(endpoint: Endpoint) -> str:
    """``ip:port`` of an endpoint as a real cluster would dial it."""
    return f"{endpoint.ip}:{endpoint.port}"


def client_of(request: web.Request) -> str:
    """The client's ``ip:port``."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else ""


class Relay:
    """Sends requests on to endpoints over pooled connections and streams the answers back,
    keeping a traffic :class:`~labkit.embedded.kubeproxy.Record` up to date when given one."""

    def __init__(self, connect_timeout: float = 5.0, read_timeout: float = 60.0) -> None:
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=15),
                auto_decompress=False,
                timeout=self.timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def forward(
        self,
        request: web.Request,
        url: URL,
        endpoint: Endpoint,
        record: Record | None = None,
        drop: frozenset[str] = frozenset(),
        drop_answer: frozenset[str] = frozenset(),
        forwarded_for: bool = True,
    ) -> web.StreamResponse:
        """Send ``request`` to ``url`` (at ``endpoint``) and stream its answer back, without the
        request headers in ``drop`` and the answer headers in ``drop_answer``; raises
        :class:`UnreachableError` when no answer comes."""
        data = _counted(request, record) if request.body_exists else None
        sending = asyncio.ensure_future(
            self._client().request(
                request.method,
                url,
                headers=forwarded_headers(request, drop, forwarded_for),
                data=data,
                allow_redirects=False,
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
                ssl=False,
            )
        )
        while not (await asyncio.wait({sending}, timeout=CLIENT_CHECK))[0]:
            if request.transport is None or request.transport.is_closing():
                sending.cancel()  # the client left while the endpoint was still thinking
                if record is not None:
                    record.finish(status=CLIENT_CLOSED)
                return web.Response(status=CLIENT_CLOSED, text="client closed request")
        try:
            upstream = sending.result()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            if record is not None:
                record.finish(CONNECT_FAILED)
            raise UnreachableError(_dial_error(e, endpoint)) from None
        try:
            return await _stream_back(request, upstream, drop_answer, record)
        finally:
            upstream.release()

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()


def _dial_error(error: BaseException, endpoint: Endpoint) -> str:
    """The error as Go's dialer words it (what kube-apiserver shows)."""
    shown = endpoint_text(endpoint)
    if isinstance(error, asyncio.TimeoutError):
        return f"dial tcp {shown}: i/o timeout"
    if isinstance(error, aiohttp.ClientConnectorError):
        code = error.os_error.errno
        reason = os.strerror(code) if code else str(error.os_error)
        return f"dial tcp {shown}: connect: {reason.lower()}"
    return f"read tcp {shown}: {error or type(error).__name__}"


async def _counted(request: web.Request, record: Record | None) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_any():
        if record is not None:
            record.bytes_in += len(chunk)
        yield chunk


async def _stream_back(
    request: web.Request, upstream: aiohttp.ClientResponse, drop: frozenset[str], record: Record | None
) -> web.StreamResponse:
    named = {h.strip().lower() for h in upstream.headers.get("Connection", "").split(",") if h.strip()}
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    for key, value in upstream.headers.items():
        lower = key.lower()
        if lower not in HOP_BY_HOP and lower not in named and lower not in drop:
            response.headers.add(key, value)
    await response.prepare(request)
    try:
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
            if record is not None:
                record.bytes_out += len(chunk)
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        log.info("backend ended %s %s early: %s", request.method, request.path, e)
        response.force_close()
        if record is not None:
            record.finish(status=upstream.status)
        return response
    await response.write_eof()
    if record is not None:
        record.finish(status=upstream.status)
    return response


def raw_subpath(request: web.Request) -> str | None:
    """What follows ``/proxy`` in the raw (still percent-encoded) path of
    ``/api/v1/namespaces/NS/KIND/NAME/proxy...``, with the query; None when the path ends at
    ``/proxy`` itself."""
    path, sep, query = request.raw_path.partition("?")
    segments = path.split("/")
    if len(segments) <= PROXY_SEGMENT + 1:
        return None
    return "/" + "/".join(segments[PROXY_SEGMENT + 1 :]) + (sep + query if query else "")


class ProxyHandler:
    """The ``proxy`` subresource of services and pods."""

    def __init__(self, store: Store, router: ServiceRouter | None, relay: Relay) -> None:
        self.store = store
        self.router = router
        self.relay = relay

    async def handle(self, request: web.Request, target: routing.Target) -> web.StreamResponse:
        """Proxy one request to a service's endpoint or to a pod."""
        if request.method not in PROXY_METHODS:
            raise method_not_allowed()
        assert target.name is not None
        namespace = target.namespace or "default"
        record: Record | None = None
        if target.rt.kind == "Service":
            scheme, endpoint, route = self._service(namespace, target.name, request)
        else:
            scheme, endpoint = pod_endpoint(self.store, namespace, target.name)
            route = None
        subpath = raw_subpath(request)
        if subpath is None:
            if request.method in ("GET", "HEAD"):
                query = f"?{request.query_string}" if request.query_string else ""
                raise web.HTTPMovedPermanently(location=request.path + "/" + query)
            subpath = "/"
        if route is not None and self.router is not None:
            record = self.router.record(route, client_of(request), "apiserver-proxy")
        url = URL(f"{scheme}://{endpoint.host}:{endpoint.real_port}{subpath}", encoded=True)
        try:
            return await self.relay.forward(
                request, url, endpoint, record, drop=frozenset({"authorization"}), drop_answer=CORS_HEADERS
            )
        except UnreachableError as e:
            raise ApiError(503, f"error trying to reach service: {e}") from None

    def _service(self, namespace: str, ident: str, request: web.Request) -> tuple[str, Endpoint, Route]:
        parsed = split_scheme_name_port(ident)
        if parsed is None:
            raise bad_request(f'invalid service request "{ident}"')
        scheme, name, port = parsed
        if self.router is None:
            raise no_endpoints(name)
        route = self.router.route(namespace, name, port, request.remote or "", mode=RANDOM)
        if route.endpoint is None:
            self.router.record(route, client_of(request), "apiserver-proxy")
            raise no_endpoints(name)
        return scheme or "http", route.endpoint, route


class RecordsHandler:
    """``/apis/traffic.labkit.dev/v1/namespaces/NS/services/NAME/records``: GET and DELETE."""

    def __init__(self, store: Store, router: ServiceRouter | None) -> None:
        self.store = store
        self.router = router

    async def handle(self, request: web.Request) -> web.Response:
        """Answer the records of a service, or forget them."""
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if self.store.find(SERVICES.key, namespace, name) is None:
            raise not_found(SERVICES, name)
        if request.method == "DELETE":
            if self.router is not None:
                self.router.clear(namespace, name)
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
        if request.method != "GET":
            raise method_not_allowed()
        text = request.query.get("since")
        since: float | None = None
        if text:
            try:
                since = float(text)
            except ValueError:
                raise bad_request(
                    f'invalid since "{text}": give a time in unix seconds, e.g. 1700000000.5'
                ) from None
        items = self.router.records(namespace, name, since) if self.router is not None else []
        return _json(
            {
                "kind": "TrafficRecordList",
                "apiVersion": "traffic.labkit.dev/v1",
                "metadata": {"namespace": namespace, "name": name},
                "items": items,
            }
        )


def _json(obj: dict[str, Any]) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), content_type="application/json")
