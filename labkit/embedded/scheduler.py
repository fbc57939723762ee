"""The scheduler: binds pending pods to nodes as kube-scheduler's default profile would decide.

Filters run in upstream's plugin order and a node fails at the first one it does not pass:
NodeUnschedulable (cordon), TaintToleration (NoSchedule and NoExecute; a node whose Ready
condition is not True counts as tainted ``not-ready``/``unreachable``, as the node controller
will make it), NodeAffinity (nodeSelector and required node affinity), NodeResourcesFit (pod
count, cpu and memory requests against allocatable). Among the nodes left, the one with the
fewest pods of the same group (same controlling owner, or else the same labels) wins, then
the one with the fewest pods, then the first by name, so placements are repeatable.

A pod that fits nowhere gets ``PodScheduled=False`` (Unschedulable) and a FailedScheduling
event in upstream's words, and is tried again when a node changes, a bound pod goes away,
or after a back-off of 1 s doubling to 10 s. The per-node counters are kept up to date from
store events, so one scheduling decision costs one pass over the nodes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.embedded.apiserver.validation import parse_quantity
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.base import Controller, Key
from labkit.embedded.resources import lookup
from labkit.embedded.store import DELETED, Event
from labkit.shared.timeutil import rfc3339

PODS = lookup("", "v1", "pods")
assert PODS is not None
SCHEDULER_NAME = "default-scheduler"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

REASON_CORDONED = "node(s) were unschedulable"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS = "Too many pods"
NO_NODES = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"

BACKOFF_INITIAL = 1.0  # kube-scheduler's podInitialBackoffDuration
BACKOFF_MAX = 10.0  # podMaxBackoffDuration
EVENT_REPEAT = 60.0  # an unchanged FailedScheduling is counted again at most this often

Group = tuple[str, ...]  # the pods that spread together: ("owner", uid) or ("labels", ns, k=v...)


# -- taints and tolerations ------------------------------------------------------------------


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Whether one toleration tolerates one taint (upstream ``Toleration.ToleratesTaint``)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    if (toleration.get("operator") or "Equal") == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(taints: Iterable[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]]) -> Any:
    """The first NoSchedule or NoExecute taint that no toleration tolerates, or None."""
    for taint in taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


# -- node selection ----------------------------------------------------------------------------


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


# -- resources ---------------------------------------------------------------------------------


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


# -- the scheduler's view of nodes and pods ----------------------------------------------------


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


def _is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def failure_message(total: int, failures: Mapping[str, tuple[list[str], bool]]) -> str:
    """kube-scheduler's FitError text: reasons counted over nodes, then what preemption found.
    ``failures`` maps a node to its reasons and whether preemption could help there at all."""
    if total == 0:
        return NO_NODES
    reasons = Counter(r for found, _ in failures.values() for r in found)
    preemption = Counter(
        NO_VICTIMS if resolvable else PREEMPTION_NOT_HELPFUL for _, resolvable in failures.values()
    )

    def histogram(counts: Counter[str]) -> str:
        return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))

    return (
        f"0/{total} nodes are available: {histogram(reasons)}. "
        f"preemption: 0/{total} nodes are available: {histogram(preemption)}."
    )


def _set_condition(pod: dict[str, Any], condition: dict[str, Any]) -> None:
    """Put ``condition`` in the pod's status, keeping lastTransitionTime if the status holds."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    for i, old in enumerate(conditions):
        if old.get("type") == condition["type"]:
            if old.get("status") == condition["status"]:
                condition["lastTransitionTime"] = old.get(
                    "lastTransitionTime", condition["lastTransitionTime"]
                )
            conditions[i] = condition
            return
    conditions.append(condition)


class Scheduler(Controller):
    """Binds pending pods of ``schedulerName: default-scheduler`` to nodes."""

    name = SCHEDULER_NAME
    watches = ("core/pods", "core/nodes")

    def __init__(self, ctx: ClusterContext) -> None:
        super().__init__(ctx)
        self._nodes: dict[str, NodeView] = {}
        self._loads: dict[str, NodeLoad] = {}
        self._placed: dict[Key, Placement] = {}
        self._demands: dict[str, tuple[int, int]] = {}  # by pod uid: requests never change
        self._pending: set[Key] = set()
        self._unschedulable: dict[Key, int] = {}  # failed attempts so far
        self._reported: dict[Key, tuple[str, float]] = {}  # last FailedScheduling message, when

    # -- following the store -------------------------------------------------------------------

    def initial_keys(self) -> Iterable[Key]:
        """Rebuild the node views and per-node counters from the store; every pending pod."""
        self._nodes.clear()
        self._loads.clear()
        self._placed.clear()
        self._pending.clear()
        for node in self.ctx.store.list("core/nodes")[0]:
            self._nodes[node["metadata"]["name"]] = NodeView.of(node)
        for pod in self.ctx.store.list(PODS.key)[0]:
            self._track_pod(pod, gone=False)
        return sorted(self._pending)

    def keys_for(self, event: Event) -> Iterable[Key]:
        """Update the counters; a pending pod is its own key, and anything that may make room
        (a node change, a bound pod leaving) retries the unschedulable pods."""
        if event.key == "core/nodes":
            name = event.obj["metadata"]["name"]
            old = self._nodes.pop(name, None)
            if event.type != DELETED:
                self._nodes[name] = NodeView.of(event.obj)
            return list(self._unschedulable) if self._nodes.get(name) != old else []
        key = (event.namespace, event.obj["metadata"]["name"])
        freed = self._track_pod(event.obj, gone=event.type == DELETED)
        keys = [key] if key in self._pending else []
        if freed:
            keys.extend(k for k in self._unschedulable if k != key)
        return keys

    def _track_pod(self, pod: Mapping[str, Any], gone: bool) -> bool:
        """Account for a pod's new state; True if it gave resources back to a node."""
        meta = pod["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        uid = meta.get("uid", "")
        node = (pod.get("spec") or {}).get("nodeName")
        if gone:
            self._demands.pop(uid, None)
            self._forget(key)
        placement = None
        if not gone and node and not _is_terminal(pod):
            cpu, memory = self._demand(pod)
            placement = Placement(node, cpu, memory, spread_group(pod))
        old = self._placed.get(key)
        if placement != old:
            if old is not None:
                self._unplace(key, old)
            if placement is not None:
                self._place(key, placement)
        if not gone and self._wants_scheduling(pod):
            self._pending.add(key)
        else:
            self._pending.discard(key)
            self._unschedulable.pop(key, None)
        return old is not None and placement is None

    def _demand(self, pod: Mapping[str, Any]) -> tuple[int, int]:
        uid = pod["metadata"].get("uid", "")
        demand = self._demands.get(uid)
        if demand is None:
            demand = self._demands[uid] = pod_requests(pod.get("spec") or {})
        return demand

    def _place(self, key: Key, placement: Placement) -> None:
        load = self._loads.setdefault(placement.node, NodeLoad())
        load.pods += 1
        load.cpu += placement.cpu
        load.memory += placement.memory
        if placement.group is not None:
            load.groups[placement.group] += 1
        self._placed[key] = placement

    def _unplace(self, key: Key, placement: Placement) -> None:
        load = self._loads[placement.node]
        load.pods -= 1
        load.cpu -= placement.cpu
        load.memory -= placement.memory
        if placement.group is not None:
            load.groups[placement.group] -= 1
            if load.groups[placement.group] <= 0:
                del load.groups[placement.group]
        del self._placed[key]

    def _forget(self, key: Key) -> None:
        self._pending.discard(key)
        self._unschedulable.pop(key, None)
        self._reported.pop(key, None)

    @staticmethod
    def _wants_scheduling(pod: Mapping[str, Any]) -> bool:
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
            and not pod["metadata"].get("deletionTimestamp")
            and not _is_terminal(pod)
        )

    # -- one decision --------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        """Bind one pending pod, or record why it fits nowhere and when to try again."""
        await asyncio.sleep(0)  # let the API server and kubelets run between decisions
        pod = self.ctx.store.find(PODS.key, *key)
        if pod is None or not self._wants_scheduling(pod):
            self._forget(key)
            return None
        if pod["spec"].get("schedulingGates"):
            self._mark(
                pod, "False", "SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates"
            )
            return None
        node, failures = self.choose(pod)
        if node is not None:
            self._bind(pod, node)
            return None
        return self._unschedulable_pod(key, pod, failure_message(len(self._nodes), failures))

    def choose(self, pod: Mapping[str, Any]) -> tuple[str | None, dict[str, tuple[list[str], bool]]]:
        """The best node for ``pod`` (None if none fits) and, per rejecting node, why."""
        cpu, memory = self._demand(pod)
        spec = pod.get("spec") or {}
        tolerations = spec.get("tolerations") or []
        group = spread_group(pod)
        failures: dict[str, tuple[list[str], bool]] = {}
        best: tuple[int, int, str] | None = None
        for view in self._nodes.values():
            reasons, resolvable = self._filter(view, spec, tolerations, cpu, memory)
            if reasons:
                failures[view.name] = (reasons, resolvable)
                continue
            load = self._loads.get(view.name) or NodeLoad()
            score = (load.groups[group] if group is not None else 0, load.pods, view.name)
            if best is None or score < best:
                best = score
        return (best[2] if best else None), failures

    def _filter(
        self,
        view: NodeView,
        spec: Mapping[str, Any],
        tolerations: Sequence[Mapping[str, Any]],
        cpu: int,
        memory: int,
    ) -> tuple[list[str], bool]:
        """Why ``view`` cannot take the pod (empty if it can), and whether preemption could help."""
        if view.unschedulable and not any(
            tolerates(t, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}) for t in tolerations
        ):
            return [REASON_CORDONED], False
        taint = untolerated(view.taints, tolerations)
        if taint is not None:
            return [f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"], False
        if not node_matches(spec, view.labels, view.name):
            return [REASON_AFFINITY], False
        load = self._loads.get(view.name) or NodeLoad()
        reasons = []
        if load.pods + 1 > view.pods:
            reasons.append(REASON_TOO_MANY_PODS)
        if cpu > 0 and cpu > view.cpu - load.cpu:
            reasons.append("Insufficient cpu")
        if memory > 0 and memory > view.memory - load.memory:
            reasons.append("Insufficient memory")
        return reasons, True

    def _bind(self, pod: dict[str, Any], node: str) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]

        def assign(draft: dict[str, Any]) -> None:
            draft["spec"].setdefault("nodeName", node)

        bound = self.ctx.registry.mutate(PODS, namespace, name, assign, manager=SCHEDULER_NAME)
        if bound["spec"].get("nodeName") != node:
            return  # bound elsewhere meanwhile
        self._mark(bound, "True")
        self.ctx.event(
            bound,
            SCHEDULER_NAME,
            "Normal",
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {node}",
        )

    def _mark(self, pod: dict[str, Any], status: str, reason: str = "", message: str = "") -> None:
        condition: dict[str, Any] = {
            "type": "PodScheduled",
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": rfc3339(),
        }
        if reason:
            condition["reason"], condition["message"] = reason, message

        def change(draft: dict[str, Any]) -> None:
            _set_condition(draft, condition)

        meta = pod["metadata"]
        self.ctx.registry.mutate(
            PODS, meta["namespace"], meta["name"], change, subresource="status", manager=SCHEDULER_NAME
        )

    def _unschedulable_pod(self, key: Key, pod: dict[str, Any], message: str) -> float:
        self._mark(pod, "False", "Unschedulable", message)
        last = self._reported.get(key)
        now = time.monotonic()
        if last is None or last[0] != message or now - last[1] >= EVENT_REPEAT:
            self.ctx.event(pod, SCHEDULER_NAME, "Warning", "FailedScheduling", message)
            self._reported[key] = (message, now)
        attempts = self._unschedulable.get(key, 0) + 1
        self._unschedulable[key] = attempts
        return min(BACKOFF_INITIAL * 2 ** (attempts - 1), BACKOFF_MAX)
