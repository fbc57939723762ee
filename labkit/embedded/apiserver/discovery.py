"""API discovery: ``/api``, ``/apis`` and per group-version resource lists, aggregated or legacy.

kubectl asks for the aggregated form (``apidiscovery.k8s.io/v2``) and falls back to the
legacy documents; the Python client only reads the legacy ones. Both are built from the
same :data:`~labkit.embedded.resources.RESOURCES` table.
"""

from __future__ import annotations

from typing import Any

from labkit.embedded.resources import RESOURCES, SUBRESOURCE_KINDS, ResourceType, groups

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

_SUB_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "log": ["get"],
    "binding": ["create"],
    "eviction": ["create"],
    "proxy": ["create", "delete", "get", "patch", "update"],
    "exec": ["create", "get"],
    "attach": ["create", "get"],
    "portforward": ["create", "get"],
}


def wants_aggregated(accept: str) -> str | None:
    """The aggregated media type to answer with, if the Accept header asks for one."""
    accept = accept.replace(" ", "")
    if "as=APIGroupDiscoveryList" not in accept:
        return None
    return AGGREGATED_V2BETA1 if "v=v2;" not in accept and "v=v2beta1" in accept else AGGREGATED_V2


def _sub_kind(rt: ResourceType, sub: str) -> tuple[str, str, str]:
    if sub == "status":
        return rt.group, rt.version, rt.kind
    if sub == "proxy":  # PodProxyOptions, ServiceProxyOptions
        return rt.group, rt.version, f"{rt.kind}ProxyOptions"
    return SUBRESOURCE_KINDS[sub]


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources:
        group, version, kind = _sub_kind(rt, sub)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": group, "version": version, "kind": kind},
                "verbs": _SUB_VERBS[sub],
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(core: bool, media_type: str) -> dict[str, Any]:
    """The APIGroupDiscoveryList for ``/api`` (core) or ``/apis`` (named groups)."""
    items = []
    for group, versions in groups().items():
        if (group == "") != core:
            continue
        item_versions = [
            {
                "version": v,
                "freshness": "Current",
                "resources": [
                    _aggregated_resource(r) for r in RESOURCES if r.group == group and r.version == v
                ],
            }
            for v in versions
        ]
        items.append({"metadata": {"name": group} if group else {}, "versions": item_versions})
    api_version = (
        "apidiscovery.k8s.io/v2beta1" if media_type == AGGREGATED_V2BETA1 else "apidiscovery.k8s.io/v2"
    )
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


def api_versions() -> dict[str, Any]:
    """The legacy ``/api`` document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def _group(group: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> dict[str, Any]:
    """The legacy ``/apis`` document."""
    named = [_group(g, vs) for g, vs in groups().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": named}


def api_group(group: str) -> dict[str, Any] | None:
    """The legacy ``/apis/<group>`` document, or None for an unknown group."""
    versions = groups().get(group)
    if not group or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """The legacy APIResourceList of one group-version, or None if not served."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    resources: list[dict[str, Any]] = []
    for rt in served:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            sub_group, sub_version, kind = _sub_kind(rt, sub)
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": _SUB_VERBS[sub],
            }
            if sub_group != rt.group or sub_version != rt.version:
                sub_entry["group"], sub_entry["version"] = sub_group, sub_version
            resources.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
