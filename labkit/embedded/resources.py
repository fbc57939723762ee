"""The resource types the embedded API server serves, and how to look them up."""

from __future__ import annotations

from dataclasses import dataclass

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives in the API and how clients name it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS

    @property
    def singular(self) -> str:
        """Lower-case kind, as discovery reports it."""
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        """The kind of a list of these objects."""
        return f"{self.kind}List"

    @property
    def key(self) -> str:
        """Storage key: ``group/plural`` (``core/pods`` for the core group)."""
        return f"{self.group or 'core'}/{self.plural}"

    @property
    def qualified(self) -> str:
        """The name in error messages: ``pods`` or ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_version(self) -> str:
        """Group and version as a URL path segment (``api/v1`` or ``apis/apps/v1``)."""
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"


_ALL = ("all",)
_POD_SUBRESOURCES = ("status", "log", "binding", "eviction", "proxy", "exec", "attach", "portforward")

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",), (), ("status",)),
    ResourceType("", "v1", "Node", "nodes", False, ("no",), (), ("status",)),
    ResourceType("", "v1", "Pod", "pods", True, ("po",), _ALL, _POD_SUBRESOURCES),
    ResourceType("", "v1", "Service", "services", True, ("svc",), _ALL, ("status", "proxy")),
    ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "Secret", "secrets", True),
    ResourceType("", "v1", "Event", "events", True, ("ev",)),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), _ALL, ("status", "scale")),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), _ALL, ("status", "scale")),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource served at ``/apis/<group>/<version>/<plural>`` (group '' for core), if any."""
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    """The resource for an object's ``apiVersion`` and ``kind``, if served."""
    return _BY_KIND.get((api_version, kind))


def groups() -> dict[str, list[str]]:
    """Served groups ('' for core) and their versions, in discovery order."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


# The subresource kinds that are not the parent kind itself.
SUBRESOURCE_KINDS = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "log": ("", "v1", "Pod"),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
}
