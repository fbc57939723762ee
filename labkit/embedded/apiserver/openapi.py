"""A minimal ``/openapi/v3``: enough for ``kubectl apply`` to leave validation to the server.

kubectl checks that each kind's PATCH operation accepts the ``fieldValidation`` query
parameter; when it does, kubectl sends ``fieldValidation=Strict`` and the server checks
fields. Strategic merge patch is deliberately left out of the request body types, so
kubectl computes patches from its compiled-in metadata for built-in kinds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from labkit.embedded.resources import RESOURCES, ResourceType, groups


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _item_path(rt: ResourceType) -> str:
    ns = "/namespaces/{namespace}" if rt.namespaced else ""
    return f"/{rt.group_version}{ns}/{rt.plural}/{{name}}"


def _collection_path(rt: ResourceType) -> str:
    ns = "/namespaces/{namespace}" if rt.namespaced else ""
    return f"/{rt.group_version}{ns}/{rt.plural}"


def _operation(rt: ResourceType, bodies: list[str]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "parameters": [
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": {"description": "OK"}},
    }
    if bodies:
        op["requestBody"] = {"content": {b: {"schema": {"type": "object"}} for b in bodies}}
    return op


def group_version_document(group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group-version, or None if not served."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    paths: dict[str, Any] = {}
    for rt in served:
        paths[_item_path(rt)] = {
            "patch": _operation(rt, ["application/merge-patch+json", "application/apply-patch+yaml"]),
            "put": _operation(rt, ["application/json"]),
        }
        paths[_collection_path(rt)] = {"post": _operation(rt, ["application/json"])}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "components": {"schemas": {}},
        "paths": paths,
    }


def _hash(group: str, version: str) -> str:
    doc = group_version_document(group, version)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16].upper()


def root() -> dict[str, Any]:
    """The ``/openapi/v3`` index of group-version documents."""
    paths = {}
    for group, versions in groups().items():
        for version in versions:
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(group, version)}"}
    return {"paths": paths}
