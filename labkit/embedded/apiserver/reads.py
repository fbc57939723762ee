"""Reads of resource URLs: GET of one object or a list (JSON or Table) and watch streams."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from labkit.embedded.apiserver import options, routing, tables, watch
from labkit.embedded.apiserver.query import flag, selection, wants_table
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.responses import json_response
from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.resources import ResourceType


class ResourceReads:
    """GET, list and watch on ``/api/v1/...`` and ``/apis/<group>/<version>/...``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _render(self, request: web.Request, rt: ResourceType, objs: list[dict[str, Any]], rv: int) -> Any:
        return tables.to_table(
            rt, objs, resource_version=str(rv), include_object=request.query.get("includeObject", "Metadata")
        )

    def get_object(self, request: web.Request, target: routing.Target) -> web.Response:
        """One named object, as JSON or as a one-row Table."""
        assert target.name is not None
        obj = self.registry.get(target.rt, target.namespace, target.name)
        if wants_table(request):
            return json_response(self._render(request, target.rt, [obj], self.registry.store.revision))
        return json_response(obj)

    async def list_objects(self, request: web.Request, target: routing.Target) -> web.Response:
        """A collection, filtered by the request's selectors, as a ``<Kind>List`` or a Table."""
        rt = target.rt
        options.list_options(request)
        matches, filtered = selection(request, rt)
        items, rv = self.registry.list(rt, target.namespace)
        if filtered:
            items = [o for o in items if matches(o)]
        if wants_table(request):
            return json_response(self._render(request, rt, items, rv))
        body = {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(rv)},
            "items": items,
        }
        return json_response(body)

    async def watch_objects(self, request: web.Request, target: routing.Target) -> web.StreamResponse:
        """A watch stream of a collection, or of one object when the URL names it."""
        seconds = options.list_options(request, watch=True)
        matches, filtered = selection(request, target.rt)
        if target.name is not None:
            name = target.name
            inner = matches
            filtered = True

            def matches(obj: dict[str, Any]) -> bool:
                return obj["metadata"]["name"] == name and inner(obj)

        send_initial = flag(request, "sendInitialEvents")
        if send_initial and request.query.get("resourceVersionMatch") != "NotOlderThan":
            raise ApiError(422, "sendInitialEvents requires resourceVersionMatch=NotOlderThan", "Invalid")
        req = watch.WatchRequest(
            rt=target.rt,
            namespace=target.namespace,
            matches=matches,
            resource_version=request.query.get("resourceVersion"),
            send_initial_events=send_initial,
            bookmarks=flag(request, "allowWatchBookmarks"),
            timeout=seconds,
            table=wants_table(request),
            include_object=request.query.get("includeObject", "Metadata"),
            filtered=filtered,
        )
        return await watch.serve(request, self.registry.store, req)
