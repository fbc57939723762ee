"""The scheduler's filters: whether one node can take one pod, and in upstream's words why not.

They run in upstream's plugin order and a node fails at the first one it does not pass:
NodeUnschedulable (cordon), TaintToleration (NoSchedule and NoExecute, the Ready condition's
implied taints included), NodeAffinity (nodeSelector and required node affinity),
NodeResourcesFit (pod count, cpu and memory requests against allocatable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit.embedded.scheduling.nodeinfo import NodeLoad, NodeView
from labkit.embedded.scheduling.taints import UNSCHEDULABLE_TAINT, tolerates, untolerated

REASON_CORDONED = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS = "Too many pods"


def _requirement_matches(req: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, op = req.get("key", ""), req.get("operator", "")
    wanted = [str(v) for v in req.get("values") or []]
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term selects no node
    fields_of_node = {"metadata.name": name}
    return all(_requirement_matches(r, labels) for r in expressions) and all(
        _requirement_matches(r, fields_of_node) for r in fields
    )


def node_matches(spec: Mapping[str, Any], labels: Mapping[str, str], name: str) -> bool:
    """Whether a node with these labels and name passes the pod's nodeSelector and required
    node affinity (nodeSelectorTerms are ORed; the expressions of one term are ANDed)."""
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if affinity is None:
        return True
    return any(_term_matches(t, labels, name) for t in affinity.get("nodeSelectorTerms") or [])


def filter_node(
    view: NodeView,
    load: NodeLoad,
    spec: Mapping[str, Any],
    tolerations: Sequence[Mapping[str, Any]],
    cpu: int,
    memory: int,
) -> tuple[list[str], bool]:
    """Why ``view`` (with ``load`` bound to it already) cannot take a pod of this spec, these
    tolerations and these requests (empty if it can), and whether preemption could help."""
    if view.unschedulable and not any(
        tolerates(t, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}) for t in tolerations
    ):
        return [REASON_CORDONED], False
    taint = untolerated(view.taints, tolerations)
    if taint is not None:
        return [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"], False
    if not node_matches(spec, view.labels, view.name):
        return [REASON_AFFINITY], False
    reasons = []
    if load.pods + 1 > view.pods:
        reasons.append(REASON_TOO_MANY_PODS)
    if cpu > 0 and cpu > view.cpu - load.cpu:
        reasons.append("Insufficient cpu")
    if memory > 0 and memory > view.memory - load.memory:
        reasons.append("Insufficient memory")
    return reasons, True
