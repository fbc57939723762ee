"""Writes of resource URLs: create, update, patch (and server-side apply), delete and deletecollection."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from labkit.embedded.apiserver import bodies, options, routing, validation
from labkit.embedded.apiserver.patch import apply_parsed
from labkit.embedded.apiserver.patch_errors import PatchError
from labkit.embedded.apiserver.query import is_dry_run, selection
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.responses import json_response
from labkit.embedded.apiserver.status import ApiError, bad_request
from labkit.embedded.apiserver.strategic_merge import strategic_merge
from labkit.embedded.resources import ResourceType


async def _check_fields(request: web.Request, rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    """``validation.check_fields``, in a thread for large bodies (it walks every value)."""
    mode = request.query.get("fieldValidation", "Warn")
    size = request.content_length or 0
    return list(await bodies.off_loop(size, validation.check_fields, rt, obj, mode))


class ResourceWrites:
    """POST, PUT, PATCH and DELETE on ``/api/v1/...`` and ``/apis/<group>/<version>/...``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def create(self, request: web.Request, target: routing.Target) -> web.Response:
        """POST to a collection: the new object, 201 (not stored under ``?dryRun=All``)."""
        rt = target.rt
        options.write_options(request, "CreateOptions")
        obj = await bodies.read_object(request)
        warnings = await _check_fields(request, rt, obj)
        created = self.registry.create(
            rt,
            target.namespace,
            obj,
            manager=request.query.get("fieldManager", ""),
            dry_run=is_dry_run(request),
        )
        return json_response(created, 201, warnings)

    async def update(
        self, request: web.Request, target: routing.Target, subresource: str | None = None
    ) -> web.Response:
        """PUT of a whole object, or of its ``subresource`` (``status``)."""
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
            dry_run=is_dry_run(request),
        )
        return json_response(updated, 200, warnings)

    async def patch(
        self, request: web.Request, target: routing.Target, subresource: str | None = None
    ) -> web.Response:
        """PATCH of an object or of its ``subresource`` (``status``).

        The body is a JSON, merge or strategic merge patch, or a server-side apply configuration
        (``application/apply-patch+yaml``), which creates the object when it does not exist yet.
        """
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
        dry_run = is_dry_run(request)
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
                    return strategic_merge(draft, applied, rt.kind)
                except PatchError as e:
                    raise ApiError(e.code, str(e)) from e

            operation = "Apply"
        else:
            parsed = await bodies.off_loop(len(raw), bodies.parse_json, raw, "the patch")

            def change(draft: dict[str, Any]) -> dict[str, Any]:
                try:
                    result = apply_parsed(draft, parsed, media, rt.kind)
                except PatchError as e:
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

    async def delete(self, request: web.Request, target: routing.Target) -> web.Response:
        """DELETE of one object: a Success Status when it is gone at once (a Pod answers with itself),
        else the object as it stays, with its deletionTimestamp."""
        assert target.name is not None
        rt = target.rt
        delete_options = await bodies.read_options(request)
        for key in ("gracePeriodSeconds", "propagationPolicy"):
            if key in request.query:
                delete_options[key] = request.query[key]
        options.delete_options(delete_options)
        obj, gone = self.registry.delete(
            rt, target.namespace, target.name, delete_options, dry_run=is_dry_run(request)
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

    async def delete_collection(self, request: web.Request, target: routing.Target) -> web.Response:
        """DELETE of a collection: every object the selectors match, answered as a list of them."""
        rt = target.rt
        delete_options = await bodies.read_options(request)
        for key in ("gracePeriodSeconds", "propagationPolicy"):
            if key in request.query:
                delete_options[key] = request.query[key]
        options.delete_options(delete_options)
        matches, _ = selection(request, rt)
        items, _ = self.registry.list(rt, target.namespace)
        deleted = []
        for obj in [o for o in items if matches(o)]:
            meta = obj["metadata"]
            try:
                gone, _ = self.registry.delete(
                    rt, meta.get("namespace"), meta["name"], delete_options, dry_run=is_dry_run(request)
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
