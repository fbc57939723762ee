"""The ``status``, ``scale``, ``binding`` and ``eviction`` subresources of resource URLs.

(``log``, ``exec``/``attach``, ``portforward`` and ``proxy`` have modules of their own.)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from labkit.embedded.apiserver import bodies, routing
from labkit.embedded.apiserver.metav1_selector import selector_to_string
from labkit.embedded.apiserver.patch import apply_parsed
from labkit.embedded.apiserver.patch_errors import PatchError
from labkit.embedded.apiserver.query import is_dry_run
from labkit.embedded.apiserver.reads import ResourceReads
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.responses import json_response
from labkit.embedded.apiserver.status import ApiError, bad_request, method_not_allowed
from labkit.embedded.apiserver.writes import ResourceWrites


class Subresources:
    """The handlers of ``.../<name>/status``, ``/scale``, ``/binding`` and ``/eviction``."""

    def __init__(self, registry: Registry, reads: ResourceReads, writes: ResourceWrites) -> None:
        self.registry = registry
        self.reads = reads
        self.writes = writes

    async def status(self, request: web.Request, target: routing.Target) -> web.Response:
        """GET, PUT or PATCH of an object's ``status`` (GET answers the whole object, as upstream)."""
        if request.method == "GET":
            return self.reads.get_object(request, target)
        if request.method == "PUT":
            return await self.writes.update(request, target, "status")
        if request.method == "PATCH":
            return await self.writes.patch(request, target, "status")
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
                "selector": selector_to_string(obj.get("spec", {}).get("selector")),
            },
        }

    async def scale(self, request: web.Request, target: routing.Target) -> web.Response:
        """GET, PUT or PATCH of an object's ``autoscaling/v1`` Scale: its ``spec.replicas``."""
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
                scale = apply_parsed(current, bodies.parse_json(raw, "the patch"), media, "Scale")
            except PatchError as e:
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
            dry_run=is_dry_run(request),
        )
        return json_response(self._scale_of(updated))

    async def binding(self, request: web.Request, target: routing.Target) -> web.Response:
        """POST of a Binding: the pod is assigned to ``target.name`` (409 if it has a node already)."""
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

    async def eviction(self, request: web.Request, target: routing.Target) -> web.Response:
        """POST of an Eviction: the pod is deleted with the Eviction's ``deleteOptions``."""
        assert target.name is not None
        if request.method != "POST":
            raise method_not_allowed()
        eviction = await bodies.read_object(request)
        self.registry.delete(target.rt, target.namespace, target.name, eviction.get("deleteOptions") or {})
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201
        )
