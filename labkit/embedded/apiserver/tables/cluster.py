"""Cluster objects' rows: nodes, namespaces and events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labkit.embedded.apiserver.tables.cells import AGE, NAME, NONE, Cells, column, metadata_of, name_age
from labkit.shared import timeutil

NODE_COLUMNS = [
    NAME,
    column("Status", "The status of the node."),
    column("Roles", "The roles of the node."),
    AGE,
    column("Version", "Kubelet version."),
    column("Internal-IP", "The node's internal address.", wide=True),
    column("External-IP", "The node's external address.", wide=True),
    column("OS-Image", "Operating system image.", wide=True),
    column("Kernel-Version", "Kernel version.", wide=True),
    column("Container-Runtime", "Container runtime and version.", wide=True),
]
_ROLE_PREFIX = "node-role.kubernetes.io/"


def _node_status(obj: dict[str, Any]) -> str:
    ready = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    words = ["Unknown" if not ready else "Ready" if ready[-1].get("status") == "True" else "NotReady"]
    if (obj.get("spec") or {}).get("unschedulable"):
        words.append("SchedulingDisabled")
    return ",".join(words)


def _node_roles(labels: dict[str, str]) -> str:
    roles = {k.removeprefix(_ROLE_PREFIX) for k in labels if k.startswith(_ROLE_PREFIX)} - {""}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    return ",".join(sorted(roles)) or NONE


def _node_address(status: dict[str, Any], kind: str) -> str:
    return next((a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == kind), NONE)


def node_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A node row (``printNode``): Ready or not, roles, version, addresses and node info."""
    status = obj.get("status") or {}
    info = status.get("nodeInfo") or {}
    name, age = name_age(obj, now)
    return [
        name,
        _node_status(obj),
        _node_roles(metadata_of(obj).get("labels") or {}),
        age,
        info.get("kubeletVersion", ""),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


NAMESPACE_COLUMNS = [NAME, column("Status", "The status of the namespace."), AGE]


def namespace_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A namespace row: name, phase and age."""
    name, age = name_age(obj, now)
    return [name, (obj.get("status") or {}).get("phase", ""), age]


EVENT_COLUMNS = [
    column("Last Seen", "When the event was last seen."),
    column("Type", "Normal or Warning."),
    column("Reason", "Short, machine-readable reason for the event."),
    column("Object", "The object the event is about (kind/name)."),
    column("Subobject", "The part of the object, such as a container.", wide=True),
    column("Source", "The component (and host) that reported the event.", wide=True),
    column("Message", "What happened."),
    column("First Seen", "When the event was first seen.", wide=True),
    column("Count", "How many times the event occurred.", wide=True),
    {**NAME, "priority": 1},
]


def event_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """An event row (``printEvent``): when, what, about which object, and how often."""
    involved, source = obj.get("involvedObject") or {}, obj.get("source") or {}
    first = timeutil.age(obj.get("firstTimestamp") or obj.get("eventTime"), now)
    last = timeutil.age(obj["lastTimestamp"], now) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 1
    if obj.get("series"):
        last = timeutil.age(obj["series"].get("lastObservedTime"), now)
        count = obj["series"].get("count", 0)
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {host}" if host else component,
        (obj.get("message") or "").strip(),
        first,
        count,
        metadata_of(obj).get("name", ""),
    ]
