"""The aiohttp application: authentication, error conversion and the URL map."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from labkit.embedded.apiserver import discovery, openapi, routing
from labkit.embedded.apiserver.handlers import ResourceHandlers
from labkit.embedded.apiserver.logs import LogSource
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.responses import json_response
from labkit.embedded.apiserver.service_proxy import TRAFFIC_PREFIX, ProxyHandler, RecordsHandler, Relay
from labkit.embedded.apiserver.status import ApiError, unauthorized
from labkit.embedded.kubeproxy.router import ServiceRouter
from labkit.embedded.streaming import ContainerStreams

log = logging.getLogger("labkit.apiserver")

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-labkit",
    "gitCommit": "labkit",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}
HEALTH_PATHS = {"/healthz", "/livez", "/readyz"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(e: ApiError) -> web.Response:
    return web.Response(
        body=json.dumps(e.to_status()).encode(), status=e.code, content_type="application/json"
    )


def build_app(
    registry: Registry,
    token: str,
    logs: LogSource | None = None,
    router: ServiceRouter | None = None,
    streams: ContainerStreams | None = None,
) -> web.Application:
    """The API server application for a store, guarded by a bearer token; ``logs`` serves
    ``kubectl logs``, ``router`` the services' ``proxy`` subresource and the traffic records
    (:mod:`~labkit.embedded.apiserver.service_proxy`), ``streams`` ``kubectl exec`` and
    ``attach`` (:mod:`~labkit.embedded.apiserver.exec`)."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in HEALTH_PATHS:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return _error(unauthorized())
        try:
            return await handler(request)
        except ApiError as e:
            return _error(e)
        except web.HTTPException:
            raise
        except Exception as e:  # the server must survive any request: answer 500 and log it
            log.exception("internal error on %s %s", request.method, request.path_qs)
            return _error(ApiError(500, f"Internal error occurred: {type(e).__name__}: {e}", "InternalError"))

    relay = Relay()
    resources = ResourceHandlers(registry, logs, ProxyHandler(registry.store, router, relay), streams, router)
    records = RecordsHandler(registry.store, router)
    app = web.Application(middlewares=[guard], client_max_size=16 * 1024 * 1024)

    async def close_relay(_app: web.Application) -> None:
        await relay.close()

    app.on_cleanup.append(close_relay)

    async def version(request: web.Request) -> web.Response:
        return json_response(KUBERNETES_VERSION)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def openapi_v3(request: web.Request) -> web.Response:
        rest = request.match_info.get("rest", "")
        if not rest:
            return json_response(openapi.root())
        parts = rest.split("/")
        if parts[0] == "api" and len(parts) == 2:
            doc = openapi.group_version_document("", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = openapi.group_version_document(parts[1], parts[2])
        else:
            doc = None
        if doc is None:
            raise routing.not_found_path()
        return json_response(doc)

    async def not_found(request: web.Request) -> web.Response:
        raise routing.not_found_path()

    async def api(request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        accept = request.headers.get("Accept", "")
        doc: dict[str, Any] | None
        if request.method == "GET" and len(parts) <= 3 - (parts[0] == "api"):
            if parts == ["api"]:
                media = discovery.wants_aggregated(accept)
                doc = discovery.aggregated(True, media) if media else discovery.api_versions()
                return _discovery_response(doc, media)
            if parts == ["apis"]:
                media = discovery.wants_aggregated(accept)
                doc = discovery.aggregated(False, media) if media else discovery.api_group_list()
                return _discovery_response(doc, media)
            if parts[0] == "api":
                doc = discovery.resource_list("", parts[1])
            elif len(parts) == 2:
                doc = discovery.api_group(parts[1])
            else:
                doc = discovery.resource_list(parts[1], parts[2])
            if doc is None:
                raise routing.not_found_path()
            return json_response(doc)
        return await resources.handle(request)

    app.router.add_get("/version", version)
    app.router.add_get("/version/", version)
    for path in HEALTH_PATHS:
        app.router.add_get(path, health)
    app.router.add_get("/openapi/v3", openapi_v3)
    app.router.add_get("/openapi/v3/{rest:.*}", openapi_v3)
    app.router.add_get("/openapi/v2", not_found)
    records_path = TRAFFIC_PREFIX + "/namespaces/{namespace}/services/{name}/records"
    app.router.add_route("*", records_path, records.handle)
    for prefix in ("/api", "/apis"):
        app.router.add_route("*", prefix, api)
        app.router.add_route("*", prefix + "/{rest:.*}", api)
    app.router.add_route("*", "/{rest:.*}", not_found)
    return app


def _discovery_response(doc: dict[str, Any], media: str | None) -> web.Response:
    response = json_response(doc)
    if media:
        response.headers["Content-Type"] = media
    return response
