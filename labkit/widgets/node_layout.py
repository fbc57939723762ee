"""What the pods-per-node picture shows, worked out once for its HTML and its PNG alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labkit.kube.models import NodeInfo, PodInfo


@dataclass(frozen=True)
class NodeBox:
    """One node's box: its name, role, condition and pods (by name)."""

    name: str
    role: str  # "control-plane" or "worker"
    condition: str  # NodeInfo.condition: ready, cordoned, not-ready, stopped
    capacity: int
    pods: tuple[PodInfo, ...]


@dataclass(frozen=True)
class NodeLayout:
    """The boxes, in the nodes' order, and the pods that are on no node yet."""

    boxes: tuple[NodeBox, ...]
    unscheduled: tuple[PodInfo, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Pods per node, plus "" for the ones on no node."""
        counts = {box.name: len(box.pods) for box in self.boxes}
        if self.unscheduled:
            counts[""] = len(self.unscheduled)
        return counts


def layout(nodes: Sequence[NodeInfo], pods: Sequence[PodInfo]) -> NodeLayout:
    """Place each pod in its node's box; a pod on a node the list does not have counts as on none."""
    names = {n.name for n in nodes}
    boxes = tuple(
        NodeBox(
            name=n.name,
            role="control-plane" if "control-plane" in n.roles else "worker",
            condition=n.condition,
            capacity=n.capacity,
            pods=tuple(sorted((p for p in pods if p.node == n.name), key=lambda p: p.name)),
        )
        for n in nodes
    )
    unscheduled = tuple(sorted((p for p in pods if p.node not in names), key=lambda p: p.name))
    return NodeLayout(boxes, unscheduled)
