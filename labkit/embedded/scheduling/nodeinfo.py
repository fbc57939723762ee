"""The scheduler's view of nodes and pods: what a node offers, what the pods bound to it use,
what a pod requests, and which pods spread together.

A node whose Ready condition is not True counts as tainted ``not-ready``/``unreachable``, as
the node controller will make it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.embedded.apiserver.validation import parse_quantity
from labkit.embedded.scheduling.taints import NOT_READY_TAINT, UNREACHABLE_TAINT

Group = tuple[str, ...]  # the pods that spread together: ("owner", uid) or ("labels", ns, k=v...)


def _amount(value: Any, scale: int) -> int:
    """A quantity in units of 1/scale, rounded up as upstream's MilliValue/Value; 0 if unreadable."""
    try:
        return math.ceil(parse_quantity(value).value * scale)
    except (ValueError, TypeError):
        return 0


def pod_requests(spec: Mapping[str, Any]) -> tuple[int, int]:
    """(millicores, bytes) a pod requests: the sum over its containers, or the largest init
    container's request if that is more (upstream ``PodRequests`` without overhead)."""

    def of(container: Mapping[str, Any]) -> tuple[int, int]:
        requests = (container.get("resources") or {}).get("requests") or {}
        return _amount(requests.get("cpu", 0), 1000), _amount(requests.get("memory", 0), 1)

    cpu = memory = 0
    for container in spec.get("containers") or []:
        c, m = of(container)
        cpu, memory = cpu + c, memory + m
    for container in spec.get("initContainers") or []:
        c, m = of(container)
        cpu, memory = max(cpu, c), max(memory, m)
    return cpu, memory


@dataclass(frozen=True)
class NodeView:
    """What filtering needs to know of a node; equal views schedule alike."""

    name: str
    labels: dict[str, str]
    taints: tuple[dict[str, Any], ...]  # NoSchedule and NoExecute only
    unschedulable: bool
    cpu: int
    memory: int
    pods: int

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> NodeView:
        """The view of a Node object."""
        spec, status = node.get("spec") or {}, node.get("status") or {}
        taints = [t for t in spec.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        if ready.get("status") != "True":
            implied = NOT_READY_TAINT if ready.get("status") == "False" else UNREACHABLE_TAINT
            if not any(t.get("key") == implied for t in taints):
                taints.append({"key": implied, "effect": "NoSchedule"})
        allocatable = status.get("allocatable") or status.get("capacity") or {}
        return cls(
            name=node["metadata"]["name"],
            labels=dict(node["metadata"].get("labels") or {}),
            taints=tuple(taints),
            unschedulable=bool(spec.get("unschedulable")),
            cpu=_amount(allocatable.get("cpu", 0), 1000),
            memory=_amount(allocatable.get("memory", 0), 1),
            pods=_amount(allocatable.get("pods", 0), 1),
        )


@dataclass
class NodeLoad:
    """What the pods bound to one node use."""

    pods: int = 0
    cpu: int = 0
    memory: int = 0
    groups: Counter[Group] = field(default_factory=Counter)


@dataclass(frozen=True)
class Placement:
    """One pod's share of a node's load."""

    node: str
    cpu: int
    memory: int
    group: Group | None


def spread_group(pod: Mapping[str, Any]) -> Group | None:
    """The pods this one spreads with: those of its controlling owner, or else those with the
    same labels in its namespace; None for a pod with neither."""
    meta = pod["metadata"]
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return ("owner", ref.get("uid", ""))
    labels = meta.get("labels") or {}
    if labels:
        return ("labels", meta.get("namespace", ""), *sorted(f"{k}={v}" for k, v in labels.items()))
    return None
