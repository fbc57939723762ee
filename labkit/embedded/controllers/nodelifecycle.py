"""The node controller: notices nodes whose kubelet went quiet, taints them and evicts their pods.

What kube-controller-manager's node-lifecycle and taint-eviction controllers do, for one zone:

* **Health.** A kubelet's heartbeat is its Lease in ``kube-node-lease`` being renewed or its
  Ready condition's ``lastHeartbeatTime`` changing; time is measured from when this
  controller saw it (as upstream, so clocks and whole-second timestamps do not matter). After
  ``config.node_grace`` seconds without one (on a clock that stands still while the daemon
  is suspended or its loop blocked, :mod:`~labkit.embedded.pauseclock`), Ready,
  MemoryPressure, DiskPressure and PIDPressure become Unknown, reason NodeStatusUnknown,
  "Kubelet stopped posting node status." When Ready leaves True the node gets a
  ``NodeNotReady`` event and its pods' Ready condition turns False, each with a
  ``NodeNotReady`` "Node is not ready" event.
* **Taints.** Ready False or Unknown taints the node ``node.kubernetes.io/not-ready`` or
  ``node.kubernetes.io/unreachable``, both NoSchedule and NoExecute; pressure conditions and
  cordon (``spec.unschedulable``) add their NoSchedule taints. Each taint carries
  ``timeAdded``. They go when the condition does.
* **Eviction.** A pod on a node with NoExecute taints is deleted (with its grace period) as
  soon as a taint has no matching toleration, or once the smallest matching
  ``tolerationSeconds`` has passed since the taint was added; a toleration without seconds
  keeps it there. Before deleting, the pod gets the ``DisruptionTarget`` condition and a
  ``TaintManagerEviction`` event; a planned eviction that the taint's removal cancels gets
  "Cancelling deletion of Pod".

Not modelled: zones and the disruption modes that slow or stop evictions when many nodes
fail at once, and the eviction rate limits.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.base import Controller, Key
from labkit.embedded.pauseclock import PauseClock
from labkit.embedded.resources import lookup
from labkit.embedded.scheduling.taints import (
    NOT_READY_TAINT,
    UNREACHABLE_TAINT,
    UNSCHEDULABLE_TAINT,
    tolerates,
)
from labkit.embedded.store import DELETED, Event
from labkit.shared.timeutil import parse_rfc3339, rfc3339

NODES = lookup("", "v1", "nodes")
PODS = lookup("", "v1", "pods")
assert NODES is not None and PODS is not None
COMPONENT = "node-controller"
EVICTION_COMPONENT = "taint-eviction-controller"
MANAGER = "kube-controller-manager"
LEASE_NAMESPACE = "kube-node-lease"

UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
# condition type -> {status: taint key}, as upstream's nodeConditionToTaintKeyStatusMap
CONDITION_TAINTS = {
    "Ready": {"False": NOT_READY_TAINT, "Unknown": UNREACHABLE_TAINT},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
}
MANAGED_TAINTS = {
    *((key, "NoSchedule") for keys in CONDITION_TAINTS.values() for key in keys.values()),
    (UNSCHEDULABLE_TAINT, "NoSchedule"),
    (NOT_READY_TAINT, "NoExecute"),
    (UNREACHABLE_TAINT, "NoExecute"),
}


def ready_status(node: Mapping[str, Any]) -> str:
    """The status of the node's Ready condition ("Unknown" if it has none)."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status", "Unknown"))
    return "Unknown"


def _heartbeat(node: Mapping[str, Any]) -> str:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("lastHeartbeatTime", ""))
    return ""


def wanted_taints(node: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (key, effect) taints this controller wants on ``node`` given its conditions and cordon."""
    wanted: set[tuple[str, str]] = set()
    for condition in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(condition.get("type", ""), {}).get(condition.get("status", ""))
        if key:
            wanted.add((key, "NoSchedule"))
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.add((UNSCHEDULABLE_TAINT, "NoSchedule"))
    status = ready_status(node)
    if status == "False":
        wanted.add((NOT_READY_TAINT, "NoExecute"))
    elif status == "Unknown":
        wanted.add((UNREACHABLE_TAINT, "NoExecute"))
    return wanted


def toleration_seconds(taint: Mapping[str, Any], tolerations: Iterable[Mapping[str, Any]]) -> float | None:
    """How long a pod may stay despite a NoExecute taint: None if no toleration matches (evict
    now), ``inf`` if a matching one has no tolerationSeconds and none has any, else the
    smallest (negative counts as 0)."""
    matching = [t for t in tolerations if tolerates(t, taint)]
    if not matching:
        return None
    seconds = [
        max(float(t["tolerationSeconds"]), 0.0) for t in matching if t.get("tolerationSeconds") is not None
    ]
    return min(seconds) if seconds else math.inf


def _set_condition(pod: dict[str, Any], condition: dict[str, Any]) -> bool:
    """Put ``condition`` into the pod's status; False if it was there with the same status."""
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    for i, old in enumerate(conditions):
        if old.get("type") == condition["type"]:
            if old.get("status") == condition["status"]:
                return False
            conditions[i] = {**old, **condition}
            return True
    conditions.append(condition)
    return True


class NodeLifecycleController(Controller):
    """Marks silent nodes Unknown, keeps the condition and cordon taints, evicts from NoExecute nodes."""

    name = COMPONENT
    watches = ("core/nodes", "coordination.k8s.io/leases", "core/pods")

    def __init__(self, ctx: ClusterContext) -> None:
        super().__init__(ctx)
        self.clock = PauseClock()
        self._probe: dict[str, float] = {}  # node -> time of its last heartbeat (self.clock)
        self._beat: dict[str, str] = {}  # node -> last seen Ready lastHeartbeatTime
        self._ready: dict[str, str] = {}  # node -> Ready status this controller last saw
        self._pods: dict[str, set[Key]] = {}  # node -> pods bound to it
        self._pod_node: dict[Key, str] = {}
        self._tainted_at: dict[tuple[str, str, str], float] = {}  # (node, key, effect) -> wall time
        self._planned: set[Key] = set()  # pods with an eviction scheduled

    def start(self) -> None:
        """Start the clock's ticker, then the loop."""
        self.clock.start()
        super().start()

    async def stop(self) -> None:
        """Stop the loop and the clock's ticker."""
        await super().stop()
        await self.clock.stop()

    # -- following the store -------------------------------------------------------------------

    def initial_keys(self) -> Iterable[Key]:
        """Every node, each given a full grace period from now; the pods-by-node index is built
        from the store."""
        for pod in self.ctx.store.list(PODS.key)[0]:
            self._track_pod(pod, gone=False)
        nodes = self.ctx.store.list(NODES.key)[0]
        for node in nodes:
            name = node["metadata"]["name"]
            self._beat[name] = _heartbeat(node)
            self._probe[name] = self.clock.now()
        return [("", n["metadata"]["name"]) for n in nodes]

    def keys_for(self, event: Event) -> Iterable[Key]:
        """Heartbeats are timed as they arrive; a node change, or a pod bound to a node that
        has NoExecute taints, reconciles that node."""
        name = event.obj["metadata"]["name"]
        if event.key == "core/pods":
            node = self._track_pod(event.obj, gone=event.type == DELETED)
            return [("", node)] if node and self._has_no_execute(node) else []
        if event.key == "coordination.k8s.io/leases":
            if event.namespace == LEASE_NAMESPACE and event.type != DELETED:
                self._probe[name] = self.clock.now()
            return []
        if event.type == DELETED:
            self._forget_node(name)
            return []
        beat = _heartbeat(event.obj)
        if self._beat.get(name) != beat:
            self._beat[name] = beat
            self._probe[name] = self.clock.now()
        return [("", name)]

    def _track_pod(self, pod: Mapping[str, Any], gone: bool) -> str | None:
        """Index the pod by node; the node if it is newly bound there."""
        key = (pod["metadata"].get("namespace", ""), pod["metadata"]["name"])
        node = None if gone else (pod.get("spec") or {}).get("nodeName") or None
        old = self._pod_node.get(key)
        if old == node:
            return None
        if old is not None:
            self._pods.get(old, set()).discard(key)
            self._pod_node.pop(key, None)
        if node is not None:
            self._pods.setdefault(node, set()).add(key)
            self._pod_node[key] = node
        else:
            self._planned.discard(key)
        return node

    def _has_no_execute(self, node: str) -> bool:
        obj = self.ctx.store.find(NODES.key, "", node)
        return obj is not None and any(
            t.get("effect") == "NoExecute" for t in (obj.get("spec") or {}).get("taints") or []
        )

    def _forget_node(self, name: str) -> None:
        for table in (self._probe, self._beat, self._ready):
            table.pop(name, None)
        self._tainted_at = {k: v for k, v in self._tainted_at.items() if k[0] != name}

    # -- one node ------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        """Check the node's heartbeat, its taints and the pods its NoExecute taints evict;
        return when to look again (the end of the grace period, the next eviction)."""
        await asyncio.sleep(0)
        name = key[1]
        node = self.ctx.store.find(NODES.key, "", name)
        if node is None:
            return None
        waits: list[float] = []
        silent = self.clock.now() - self._probe.setdefault(name, self.clock.now())
        grace = float(self.ctx.config.node_grace)
        if silent > grace:
            node = self._mark_unknown(node)
        else:
            waits.append(grace - silent + 0.05)
        self._note_readiness(node)
        node = self._sync_taints(node)
        evict_in = self._evict(node)
        if evict_in is not None:
            waits.append(evict_in)
        return min(waits) if waits else None

    def _mark_unknown(self, node: dict[str, Any]) -> dict[str, Any]:
        conditions = (node.get("status") or {}).get("conditions") or []
        if all(c.get("status") == "Unknown" for c in conditions if c.get("type") in UNKNOWN_CONDITIONS):
            return node
        now = rfc3339()

        def change(draft: dict[str, Any]) -> None:
            for condition in draft.setdefault("status", {}).setdefault("conditions", []):
                if condition.get("type") in UNKNOWN_CONDITIONS and condition.get("status") != "Unknown":
                    condition.update(
                        status="Unknown",
                        reason="NodeStatusUnknown",
                        message="Kubelet stopped posting node status.",
                        lastTransitionTime=now,
                    )

        name = node["metadata"]["name"]
        return self.ctx.registry.mutate(NODES, None, name, change, subresource="status", manager=MANAGER)

    def _note_readiness(self, node: dict[str, Any]) -> None:
        """On Ready leaving True: the node's NodeNotReady event, and its pods marked not ready."""
        name = node["metadata"]["name"]
        status = ready_status(node)
        previous = self._ready.get(name, status)
        self._ready[name] = status
        if previous != "True" or status == "True":
            return
        self.ctx.event(node, COMPONENT, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        for pod_key in sorted(self._pods.get(name, ())):
            self._mark_pod_not_ready(pod_key)

    def _mark_pod_not_ready(self, key: Key) -> None:
        changed: list[bool] = []

        def change(pod: dict[str, Any]) -> None:
            has_ready = any(
                c.get("type") == "Ready" for c in (pod.get("status") or {}).get("conditions") or []
            )
            if has_ready:
                condition = {"type": "Ready", "status": "False", "lastTransitionTime": rfc3339()}
                changed.append(_set_condition(pod, condition))

        try:
            pod = self.ctx.registry.mutate(
                PODS, key[0], key[1], change, subresource="status", manager=MANAGER
            )
        except ApiError as e:
            if e.code == 404:
                return
            raise
        if any(changed):
            self.ctx.event(pod, COMPONENT, "Warning", "NodeNotReady", "Node is not ready")

    def _sync_taints(self, node: dict[str, Any]) -> dict[str, Any]:
        name = node["metadata"]["name"]
        wanted = wanted_taints(node)
        taints = (node.get("spec") or {}).get("taints") or []
        have = {
            (t.get("key"), t.get("effect"))
            for t in taints
            if (t.get("key"), t.get("effect")) in MANAGED_TAINTS
        }
        if have == wanted:
            return node
        now = time.time()
        added = rfc3339()

        def change(draft: dict[str, Any]) -> None:
            current = draft["spec"].get("taints") or []
            kept = [
                t
                for t in current
                if (t.get("key"), t.get("effect")) not in MANAGED_TAINTS
                or (t.get("key"), t.get("effect")) in wanted
            ]
            present = {(t.get("key"), t.get("effect")) for t in kept}
            for key, effect in sorted(wanted - present):
                kept.append({"key": key, "effect": effect, "timeAdded": added})
                self._tainted_at[(name, key, effect)] = now
            if kept:
                draft["spec"]["taints"] = kept
            else:
                draft["spec"].pop("taints", None)

        return self.ctx.registry.mutate(NODES, None, name, change, manager=MANAGER)

    # -- eviction ------------------------------------------------------------------------------

    def _taint_time(self, node: str, taint: Mapping[str, Any]) -> float:
        """When the taint was put on (wall-clock seconds): as this controller recorded it, or its
        timeAdded, or (for neither) now, remembered from now on."""
        key = (node, str(taint.get("key", "")), str(taint.get("effect", "")))
        if key not in self._tainted_at:
            try:
                self._tainted_at[key] = parse_rfc3339(str(taint["timeAdded"])).timestamp()
            except (KeyError, ValueError):
                self._tainted_at[key] = time.time()
        return self._tainted_at[key]

    def _evict(self, node: dict[str, Any]) -> float | None:
        """Evict the pods whose time is up; seconds until the next planned eviction, if any."""
        name = node["metadata"]["name"]
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        now = time.time()
        soonest: float | None = None
        for key in sorted(self._pods.get(name, ())):
            pod = self.ctx.store.find(PODS.key, *key)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                self._planned.discard(key)
                continue
            due = self._due(name, pod, taints)
            if due is None or due == math.inf:
                self._cancel(pod, key)
            elif due <= now:
                self._planned.discard(key)
                self._evict_pod(pod)
            else:
                self._planned.add(key)
                soonest = due - now if soonest is None else min(soonest, due - now)
        return soonest

    def _due(self, node: str, pod: Mapping[str, Any], taints: list[dict[str, Any]]) -> float | None:
        """When the pod must go (wall-clock seconds, ``inf`` for never), None with no NoExecute taint."""
        if not taints:
            return None
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        due = math.inf
        for taint in taints:
            seconds = toleration_seconds(taint, tolerations)
            if seconds is None:
                return 0.0
            due = min(due, self._taint_time(node, taint) + seconds)
        return due

    def _cancel(self, pod: dict[str, Any], key: Key) -> None:
        if key in self._planned:
            self._planned.discard(key)
            self.ctx.event(
                pod,
                EVICTION_COMPONENT,
                "Normal",
                "TaintManagerEviction",
                f"Cancelling deletion of Pod {key[0]}/{key[1]}",
            )

    def _evict_pod(self, pod: dict[str, Any]) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.ctx.event(
            pod,
            EVICTION_COMPONENT,
            "Normal",
            "TaintManagerEviction",
            f"Marking for deletion Pod {namespace}/{name}",
        )
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": rfc3339(),
        }

        def change(draft: dict[str, Any]) -> None:
            _set_condition(draft, condition)

        try:
            self.ctx.registry.mutate(PODS, namespace, name, change, subresource="status", manager=MANAGER)
            self.ctx.registry.delete(PODS, namespace, name)
        except ApiError as e:
            if e.code != 404:
                raise
