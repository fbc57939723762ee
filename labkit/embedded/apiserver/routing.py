"""Parsing resource URLs into what they address."""

from __future__ import annotations

from dataclasses import dataclass

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.resources import ResourceType, lookup

_NAMESPACE_SUBRESOURCES = {"status"}


@dataclass(frozen=True)
class Target:
    """What a resource URL addresses."""

    rt: ResourceType
    namespace: str | None  # None: cluster-scoped, or a list across all namespaces
    name: str | None
    subresource: str | None = None
    subpath: str = ""  # what follows a proxy subresource
    watch_path: bool = False  # the legacy /watch/ URL form


def not_found_path() -> ApiError:
    """404 for a URL that names nothing this server serves."""
    return ApiError(404, "the server could not find the requested resource", "NotFound", {})


def parse(path: str) -> Target:
    """Parse ``/api/v1/...`` or ``/apis/<group>/<version>/...`` into a :class:`Target`."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise not_found_path()
    watch_path = bool(rest) and rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    namespace: str | None = None
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES)
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        raise not_found_path()
    rt = lookup(group, version, rest[0])
    if rt is None:
        raise not_found_path()
    if not rt.namespaced and namespace is not None:
        raise not_found_path()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in rt.subresources:
        raise not_found_path()
    if len(rest) > 3 and sub != "proxy":
        raise not_found_path()
    subpath = "/" + "/".join(rest[3:]) if sub == "proxy" else ""
    if path.endswith("/") and sub == "proxy":
        subpath = subpath.rstrip("/") + "/"
    return Target(rt, namespace, name, sub, subpath, watch_path)
