"""HTTP handlers for resource URLs: read the request, call the registry, write the answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from labkit.embedded.apiserver import (
    bodies,
    fieldlabels,
    options,
    patch,
    routing,
    selectors,
    tables,
    validation,
    watch,
)
from labkit.embedded.apiserver.exec import ExecHandler
from labkit.embedded.apiserver.logs import LogHandler, LogSource
from labkit.embedded.apiserver.portforward import PortForwardHandler
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.service_proxy import ProxyHandler
from labkit.embedded.apiserver.status import ApiError, bad_request, method_not_allowed
from labkit.embedded.kubeproxy.router import ServiceRouter
from labkit.embedded.resources import ResourceType
from labkit.embedded.streaming import ContainerStreams

TRUE = {"true", "1", "yes"}


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter, case-insensitively."""
    return request.query.get(name, "").lower() in TRUE


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    """A JSON answer, with ``Warning`` headers for field warnings."""
    response = web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json")
    for text in warnings or []:
        response.headers.add("Warning", "299 - " + json.dumps(text))
    return response


def wants_table(request: web.Request) -> bool:
    """True when the client asked for ``meta.k8s.io`` Table output."""
    return "as=Table" in request.headers.get("Accept", "").replace(" ", "")


def _selectors(request: web.Request, rt: ResourceType) -> tuple[Callable[[dict[str, Any]], bool], bool]:
    label_text = request.query.get("labelSelector", "")
    field_text = request.query.get("fieldSelector", "")
    try:
        labels = selectors.parse_label_selector(label_text) if label_text else None
        fields = selectors.parse_field_selector(field_text) if field_text else None
    except selectors.SelectorError as e:
        raise bad_request(f"unable to parse requirement: {e}") from e
    if field_text:
        fieldlabels.check(rt, selectors.field_paths(field_text))

    def matches(obj: dict[str, Any]) -> bool:
        if labels is not None and not labels(obj["metadata"].get("labels") or {}):
            return False
        return fields is None or fields(obj)

    return matches, bool(label_text or field_text)


async def _check_fields(request: web.Request, rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    """``validation.check_fields``, in a thread for large bodies (it walks every value)."""
    mode = request.query.get("fieldValidation", "Warn")
    size = request.content_length or 0
    return list(await bodies.off_loop(size, validation.check_fields, rt, obj, mode))


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise bad_request(f'Invalid dryRun value "{value}": supported values: "All"')
    return bool(values)


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
        execs = ExecHandler(registry, streams)
        self.subresources: dict[str, Callable[[web.Request, routing.Target], Any]] = {
            "log": LogHandler(registry, logs).handle,
            "exec": execs.handle,
            "attach": execs.handle,
            "portforward": PortForwardHandler(registry, router).handle,
            "status": self._status,
            "scale": self._scale,
            "binding": self._binding,
            "eviction": self._eviction,
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
                    self._watch(request, target)
                    if target.watch_path or flag(request, "watch")
                    else self._list(request, target)
                )
            if method == "POST":
                return await self._create(request, target)
            if method == "DELETE":
                return await self._delete_collection(request, target)
        else:
            if method == "GET":
                if target.watch_path or flag(request, "watch"):
                    return await self._watch(request, target)
                return self._get(request, target)
            if method == "PUT":
                return await self._update(request, target)
            if method == "PATCH":
                return await self._patch(request, target)
            if method == "DELETE":
                return await self._delete(request, target)
        raise method_not_allowed()

    # -- reads ---------------------------------------------------------------------------

    def _render(self, request: web.Request, rt: ResourceType, objs: list[dict[str, Any]], rv: int) -> Any:
        return tables.to_table(
            rt, objs, resource_version=str(rv), include_object=request.query.get("includeObject", "Metadata")
        )

    def _get(self, request: web.Request, target: routing.Target) -> web.Response:
        assert target.name is not None
        obj = self.registry.get(target.rt, target.namespace, target.name)
        if wants_table(request):
            return json_response(self._render(request, target.rt, [obj], self.registry.store.revision))
        return json_response(obj)

    async def _list(self, request: web.Request, target: routing.Target) -> web.Response:
        rt = target.rt
        options.list_options(request)
        matches, filtered = _selectors(request, rt)
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

    async def _watch(self, request: web.Request, target: routing.Target) -> web.StreamResponse:
        seconds = options.list_options(request, watch=True)
        matches, filtered = _selectors(request, target.rt)
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

    # -- writes --------------------------------------------------------------------------

    async def _create(self, request: web.Request, target: routing.Target) -> web.Response:
        rt = target.rt
        options.write_options(request, "CreateOptions")
        obj = await bodies.read_object(request)
        warnings = await _check_fields(request, rt, obj)
        created = self.registry.create(
            rt,
            target.namespace,
            obj,
            manager=request.query.get("fieldManager", ""),
            dry_run=_dry_run(request),
        )
        return json_response(created, 201, warnings)

    async def _update(
        self, request: web.Request, target: routing.Target, subresource: str | None = None
    ) -> web.Response:
        assert target.name is not None
        rt = target.rt
        options.write_options(request, "UpdateOptions")
        obj = await bodies.read_object(request)
        warnings = await _check_fields(request, rt, obj)
        updated = self.registry.update(
            rt,
            target.namespace,
            target.name,
            obj,
            subresource=subresource,
            manager=request.query.get("fieldManager", ""),
            dry_run=_dry_run(request),
        )
        return json_response(updated, 200, warnings)

    async def _patch(
        self, request: web.Request, target: routing.Target, subresource: str | None = None
    ) -> web.Response:
        assert target.name is not None
        rt = target.rt
        media = bodies.content_type(request)
        if media not in bodies.PATCH_TYPES:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join(bodies.PATCH_TYPES),
                "UnsupportedMediaType",
            )
        options.write_options(request, "PatchOptions", apply=media == "application/apply-patch+yaml")
        raw = await bodies.read_bytes(request)
        mode = request.query.get("fieldValidation", "Warn")
        manager = request.query.get("fieldManager", "")
        dry_run = _dry_run(request)
        warnings: list[str] = []
        if media == "application/apply-patch+yaml":
            applied = await bodies.off_loop(len(raw), bodies.parse_yaml, raw, "apply configuration")
            if not isinstance(applied, dict):
                raise bad_request("the apply configuration must be an object")
            warnings = validation.check_fields(rt, applied, mode)
            if (
                self.registry.store.find(rt.key, target.namespace or "", target.name) is None
                and subresource is None
            ):
                applied.setdefault("metadata", {}).setdefault("name", target.name)
                created = self.registry.create(
                    rt, target.namespace, applied, manager=manager, dry_run=dry_run, operation="Apply"
                )
                return json_response(created, 201, warnings)
            applied.get("metadata", {}).pop("resourceVersion", None)

            def change(draft: dict[str, Any]) -> dict[str, Any]:
                try:
                    return patch.strategic_merge(draft, applied, rt.kind)
                except patch.PatchError as e:
                    raise ApiError(e.code, str(e)) from e

            operation = "Apply"
        else:
            parsed = await bodies.off_loop(len(raw), bodies.parse_json, raw, "the patch")

            def change(draft: dict[str, Any]) -> dict[str, Any]:
                try:
                    result = patch.apply_parsed(draft, parsed, media, rt.kind)
                except patch.PatchError as e:
                    raise ApiError(e.code, str(e)) from e
                warnings.extend(validation.check_fields(rt, result, mode))
                return result

            operation = "Update"
        updated = self.registry.mutate(
            rt,
            target.namespace,
            target.name,
            change,
            subresource=subresource,
            manager=manager,
            dry_run=dry_run,
            operation=operation,
        )
        return json_response(updated, 200, warnings)

    async def _delete(self, request: web.Request, target: routing.Target) -> web.Response:
        assert target.name is not None
        rt = target.rt
        delete_options = await bodies.read_options(request)
        for key in ("gracePeriodSeconds", "propagationPolicy"):
            if key in request.query:
                delete_options[key] = request.query[key]
        options.delete_options(delete_options)
        obj, gone = self.registry.delete(
            rt, target.namespace, target.name, delete_options, dry_run=_dry_run(request)
        )
        if gone and rt.kind != "Pod":
            details: dict[str, Any] = {
                "name": target.name,
                "kind": rt.plural,
                "uid": obj["metadata"].get("uid"),
            }
            if rt.group:
                details["group"] = rt.group
            return json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                }
            )
        return json_response(obj)

    async def _delete_collection(self, request: web.Request, target: routing.Target) -> web.Response:
        rt = target.rt
        delete_options = await bodies.read_options(request)
        for key in ("gracePeriodSeconds", "propagationPolicy"):
            if key in request.query:
                delete_options[key] = request.query[key]
        options.delete_options(delete_options)
        matches, _ = _selectors(request, rt)
        items, _ = self.registry.list(rt, target.namespace)
        deleted = []
        for obj in [o for o in items if matches(o)]:
            meta = obj["metadata"]
            try:
                gone, _ = self.registry.delete(
                    rt, meta.get("namespace"), meta["name"], delete_options, dry_run=_dry_run(request)
                )
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(gone)
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.registry.store.revision)},
                "items": deleted,
            }
        )

    # -- subresources --------------------------------------------------------------------

    async def _status(self, request: web.Request, target: routing.Target) -> web.Response:
        if request.method == "GET":
            return self._get(request, target)
        if request.method == "PUT":
            return await self._update(request, target, "status")
        if request.method == "PATCH":
            return await self._patch(request, target, "status")
        raise method_not_allowed()

    def _scale_of(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": obj.get("spec", {}).get("replicas", 0)},
            "status": {
                "replicas": obj.get("status", {}).get("replicas", 0),
                "selector": selectors.selector_to_string(obj.get("spec", {}).get("selector")),
            },
        }

    async def _scale(self, request: web.Request, target: routing.Target) -> web.Response:
        assert target.name is not None
        rt = target.rt
        if request.method == "GET":
            return json_response(self._scale_of(self.registry.get(rt, target.namespace, target.name)))
        if request.method == "PUT":
            scale = await bodies.read_object(request)
            if scale.get("kind", "Scale") != "Scale":
                raise bad_request(f"the scale subresource takes a Scale, not a {scale.get('kind')}")
        elif request.method == "PATCH":
            media = bodies.content_type(request)
            raw = await bodies.read_bytes(request)
            current = self._scale_of(self.registry.get(rt, target.namespace, target.name))
            try:
                scale = patch.apply_parsed(current, bodies.parse_json(raw, "the patch"), media, "Scale")
            except patch.PatchError as e:
                raise ApiError(e.code, str(e)) from e
        else:
            raise method_not_allowed()
        replicas = (scale.get("spec") or {}).get("replicas")
        if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas >= 2**31:
            raise bad_request(
                'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal number '
                f"{replicas} into Go struct field ScaleSpec.spec.replicas of type int32"
            )
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(
                422,
                f'Scale.autoscaling "{target.name}" is invalid: spec.replicas: Invalid value: '
                f"{replicas!r}: must be greater than or equal to 0",
                "Invalid",
                {
                    "name": target.name,
                    "group": "autoscaling",
                    "kind": "Scale",
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "spec.replicas",
                            "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                        }
                    ],
                },
            )
        expected = (scale.get("metadata") or {}).get("resourceVersion")

        def change(draft: dict[str, Any]) -> None:
            draft["spec"]["replicas"] = replicas
            if expected:
                draft["metadata"]["resourceVersion"] = expected

        updated = self.registry.mutate(
            rt,
            target.namespace,
            target.name,
            change,
            manager=request.query.get("fieldManager", ""),
            dry_run=_dry_run(request),
        )
        return json_response(self._scale_of(updated))

    async def _binding(self, request: web.Request, target: routing.Target) -> web.Response:
        assert target.name is not None
        if request.method != "POST":
            raise method_not_allowed()
        binding = await bodies.read_object(request)
        node = (binding.get("target") or {}).get("name")
        if not node:
            raise bad_request("a Binding needs target.name: the node to bind the pod to")
        name = target.name

        def change(pod: dict[str, Any]) -> None:
            current = pod["spec"].get("nodeName")
            if current:
                raise ApiError(
                    409,
                    f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is '
                    f'already assigned to node "{current}"',
                    "Conflict",
                    {"name": name, "kind": "pods/binding"},
                )
            pod["spec"]["nodeName"] = node

        self.registry.mutate(target.rt, target.namespace, name, change, manager="scheduler")
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
        )

    async def _eviction(self, request: web.Request, target: routing.Target) -> web.Response:
        assert target.name is not None
        if request.method != "POST":
            raise method_not_allowed()
        eviction = await bodies.read_object(request)
        self.registry.delete(target.rt, target.namespace, target.name, eviction.get("deleteOptions") or {})
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
        )
