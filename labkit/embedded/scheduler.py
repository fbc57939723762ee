"""The scheduler: binds pending pods to nodes as kube-scheduler's default profile would decide.

A pending pod goes through the filters of :mod:`labkit.embedded.scheduling.filters` on every
node. Among the nodes left, the one with the fewest pods of the same group (same controlling
owner, or else the same labels) wins, then the one with the fewest pods, then the first by
name, so placements are repeatable.

A pod that fits nowhere gets ``PodScheduled=False`` (Unschedulable) and a FailedScheduling
event in upstream's words (:mod:`labkit.embedded.scheduling.fiterror`), and is tried again
when a node changes, a bound pod goes away, or after a back-off of 1 s doubling to 10 s. The
per-node counters are kept up to date from store events, so one scheduling decision costs one
pass over the nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.base import Controller, Key
from labkit.embedded.resources import lookup
from labkit.embedded.scheduling.filters import filter_node
from labkit.embedded.scheduling.fiterror import failure_message
from labkit.embedded.scheduling.nodeinfo import NodeLoad, NodeView, Placement, pod_requests, spread_group
from labkit.embedded.store import DELETED, Event
from labkit.shared.timeutil import rfc3339

PODS = lookup("", "v1", "pods")
assert PODS is not None
SCHEDULER_NAME = "default-scheduler"

BACKOFF_INITIAL = 1.0  # kube-scheduler's podInitialBackoffDuration
BACKOFF_MAX = 10.0  # podMaxBackoffDuration
EVENT_REPEAT = 60.0  # an unchanged FailedScheduling is counted again at most this often


def _is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


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
            load = self._loads.get(view.name) or NodeLoad()
            reasons, resolvable = filter_node(view, load, spec, tolerations, cpu, memory)
            if reasons:
                failures[view.name] = (reasons, resolvable)
                continue
            score = (load.groups[group] if group is not None else 0, load.pods, view.name)
            if best is None or score < best:
                best = score
        return (best[2] if best else None), failures

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
