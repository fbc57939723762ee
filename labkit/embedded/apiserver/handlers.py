"""HTTP handlers for resource URLs: route each request to its verb or subresource handler.

The verbs are :mod:`~labkit.embedded.apiserver.reads` (get, list, watch) and
:mod:`~labkit.embedded.apiserver.writes` (create, update, patch, delete, deletecollection); the
subresources are :mod:`~labkit.embedded.apiserver.subresources` (status, scale, binding,
eviction) and the modules of ``log``, ``exec``/``attach``, ``portforward`` and ``proxy``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from labkit.embedded.apiserver import options, routing
from labkit.embedded.apiserver.exec import ExecHandler
from labkit.embedded.apiserver.logs import LogHandler, LogSource
from labkit.embedded.apiserver.portforward import PortForwardHandler
from labkit.embedded.apiserver.query import flag
from labkit.embedded.apiserver.reads import ResourceReads
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.service_proxy import ProxyHandler
from labkit.embedded.apiserver.status import method_not_allowed
from labkit.embedded.apiserver.subresources import Subresources
from labkit.embedded.apiserver.writes import ResourceWrites
from labkit.embedded.kubeproxy.router import ServiceRouter
from labkit.embedded.streaming import ContainerStreams


class ResourceHandlers:
    """The handlers of ``/api/v1/...`` and ``/apis/<group>/<version>/...``."""

    def __init__(
        self,
        registry: Registry,
        logs: LogSource | None = None,
        proxy: ProxyHandler | None = None,
        streams: ContainerStreams | None = None,
        router: ServiceRouter | None = None,
    ) -> None:
        self.registry = registry
        self.reads = ResourceReads(registry)
        self.writes = ResourceWrites(registry)
        own = Subresources(registry, self.reads, self.writes)
        execs = ExecHandler(registry, streams)
        self.subresources: dict[str, Callable[[web.Request, routing.Target], Any]] = {
            "log": LogHandler(registry, logs).handle,
            "exec": execs.handle,
            "attach": execs.handle,
            "portforward": PortForwardHandler(registry, router).handle,
            "status": own.status,
            "scale": own.scale,
            "binding": own.binding,
            "eviction": own.eviction,
        }
        if proxy is not None:
            self.subresources["proxy"] = proxy.handle

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one resource request."""
        target = routing.parse(request.path)
        if target.subresource in (None, "status", "scale"):
            options.negotiate(request)
        if target.subresource:
            handler = self.subresources.get(target.subresource)
            if handler is None:
                raise method_not_allowed()
            return await handler(request, target)
        method = request.method
        if target.name is None:
            if method == "GET":
                return await (
                    self.reads.watch_objects(request, target)
                    if target.watch_path or flag(request, "watch")
                    else self.reads.list_objects(request, target)
                )
            if method == "POST":
                return await self.writes.create(request, target)
            if method == "DELETE":
                return await self.writes.delete_collection(request, target)
        else:
            if method == "GET":
                if target.watch_path or flag(request, "watch"):
                    return await self.reads.watch_objects(request, target)
                return self.reads.get_object(request, target)
            if method == "PUT":
                return await self.writes.update(request, target)
            if method == "PATCH":
                return await self.writes.patch(request, target)
            if method == "DELETE":
                return await self.writes.delete(request, target)
        raise method_not_allowed()
