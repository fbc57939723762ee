"""The status half of a Deployment controller pass: counts, conditions, progress deadlines.

As upstream's ``calculateStatus``, ``syncRolloutStatus`` and ``checkPausedConditions``
(``pkg/controller/deployment/{sync,progress}.go``); :class:`PassState` also holds what one
pass knows (the Deployment and the latest version of each of its ReplicaSets) and writes
the Deployment's revision annotation and status.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers import workloads as wl
from labkit.embedded.resources import ResourceType, lookup
from labkit.shared.timeutil import parse_rfc3339

Obj = dict[str, Any]
_DEPLOYMENTS = lookup("apps", "v1", "deployments")
assert _DEPLOYMENTS is not None
DEPLOYMENTS: ResourceType = _DEPLOYMENTS
MAX_INT32 = 2**31 - 1
PROGRESSING, AVAILABLE = "Progressing", "Available"
NEW_RS_AVAILABLE, TIMED_OUT, PAUSED = "NewReplicaSetAvailable", "ProgressDeadlineExceeded", "DeploymentPaused"


class PassState:
    """One pass over a Deployment: what it knows, its status rules, and its writes."""

    def __init__(self, ctx: ClusterContext, deployment: Obj, now: datetime) -> None:
        self.ctx = ctx
        self.d = deployment
        self.now = now
        self.sets: dict[str, Obj] = {}  # uid -> latest version of each owned ReplicaSet
        self.requeue: float | None = None

    @property
    def spec(self) -> Obj:
        """The Deployment's spec."""
        return self.d["spec"]

    @property
    def desired(self) -> int:
        """``spec.replicas``."""
        return wl.replicas_of(self.d)

    def has_deadline(self) -> bool:
        """A progress deadline is set (not the 'never' value)."""
        deadline = self.spec.get("progressDeadlineSeconds")
        return deadline is not None and deadline != MAX_INT32

    def latest(self, rs: Obj | None) -> Obj | None:
        """The newest version of a ReplicaSet this pass has seen or written."""
        return None if rs is None else self.sets.get(rs["metadata"]["uid"], rs)

    def latest_all(self, sets: Iterable[Obj | None]) -> list[Obj]:
        """The newest versions, without the missing new set."""
        return [s for s in (self.latest(rs) for rs in sets) if s is not None]

    # -- status --------------------------------------------------------------------------------

    def condition(self, kind: str, status: str, reason: str, message: str) -> Obj:
        """A condition stamped now."""
        return wl.condition(kind, status, reason, message, self.now)

    def calculate_status(self, sets: list[Obj | None], new: Obj | None) -> Obj:
        """``calculateStatus``: sums over the sets and the Available condition."""
        current = self.d.get("status") or {}
        sets_now = self.latest_all(sets)
        available = sum(wl.status_count(rs, "availableReplicas") for rs in sets_now)
        counts = {
            "observedGeneration": int(self.d["metadata"].get("generation") or 0),
            "replicas": sum(wl.status_count(rs, "replicas") for rs in sets_now),
            "updatedReplicas": wl.status_count(self.latest(new), "replicas"),
            "readyReplicas": sum(wl.status_count(rs, "readyReplicas") for rs in sets_now),
            "availableReplicas": available,
            "unavailableReplicas": max(sum(wl.replicas_of(rs) for rs in sets_now) - available, 0),
        }
        status: Obj = {k: v for k, v in counts.items() if v}
        if current.get("conditions"):
            status["conditions"] = copy.deepcopy(current["conditions"])
        if "collisionCount" in current:
            status["collisionCount"] = current["collisionCount"]
        _, max_unavailable = wl.fenceposts(self.d)
        if available >= self.desired - max_unavailable:
            cond = self.condition(
                AVAILABLE, "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
            )
        else:
            message = "Deployment does not have minimum availability."
            cond = self.condition(AVAILABLE, "False", "MinimumReplicasUnavailable", message)
        wl.set_condition(status, cond)
        return status

    def sync_status(self, sets: list[Obj | None], new: Obj | None) -> None:
        """Write the calculated status if it changed."""
        self.write(None, self.calculate_status(sets, new))

    def sync_rollout_status(self, sets: list[Obj | None], new: Obj | None) -> None:
        """``syncRolloutStatus``: the status plus the Progressing condition, and a look again at
        the progress deadline while the rollout is stuck."""
        status = self.calculate_status(sets, new)
        if not self.has_deadline():
            wl.remove_condition(status, PROGRESSING)
        current = wl.get_condition(self.d.get("status"), PROGRESSING)
        done_before = (
            status.get("replicas", 0) == status.get("updatedReplicas", 0)
            and current is not None
            and current["reason"] == NEW_RS_AVAILABLE
        )
        if self.has_deadline() and not done_before:
            self.progress(status, current, new)
        self.copy_replica_failure(status, sets, new)
        if status == (self.d.get("status") or {}):
            self.requeue = self.stuck_for(status)
            return
        self.write(None, status)

    def progress(self, status: Obj, current: Obj | None, new: Obj | None) -> None:
        """Set Progressing: complete, progressing, or timed out."""
        subject = (
            f'ReplicaSet "{new["metadata"]["name"]}"' if new else f'Deployment "{self.d["metadata"]["name"]}"'
        )
        if self.complete(status):
            message = f"{subject} has successfully progressed."
            wl.set_condition(status, self.condition(PROGRESSING, "True", NEW_RS_AVAILABLE, message))
        elif self.progressing(status):
            cond = self.condition(PROGRESSING, "True", "ReplicaSetUpdated", f"{subject} is progressing.")
            if current is not None:
                if current["status"] == "True":
                    cond["lastTransitionTime"] = current["lastTransitionTime"]
                wl.remove_condition(status, PROGRESSING)
            wl.set_condition(status, cond)
        elif self.timed_out(status):
            message = f"{subject} has timed out progressing."
            wl.set_condition(status, self.condition(PROGRESSING, "False", TIMED_OUT, message))

    def copy_replica_failure(self, status: Obj, sets: list[Obj | None], new: Obj | None) -> None:
        """A ReplicaFailure condition of the new set (else of any set) shows on the Deployment."""
        ordered = self.latest_all([new, *sets])
        failures = [c for rs in ordered for c in (rs.get("status") or {}).get("conditions") or []]
        failure = next((c for c in failures if c.get("type") == "ReplicaFailure"), None)
        if failure is None:
            wl.remove_condition(status, "ReplicaFailure")
            return
        when = failure.get("lastTransitionTime")
        keys = ("type", "status", "reason", "message")
        cond = {**{k: failure.get(k) for k in keys}, "lastUpdateTime": when, "lastTransitionTime": when}
        wl.set_condition(status, cond)

    def complete(self, status: Obj) -> bool:
        """``DeploymentComplete``: all replicas updated and available, the spec observed."""
        return (
            status.get("updatedReplicas", 0) == self.desired
            and status.get("replicas", 0) == self.desired
            and status.get("availableReplicas", 0) == self.desired
            and status.get("observedGeneration", 0) >= int(self.d["metadata"].get("generation") or 0)
        )

    def progressing(self, status: Obj) -> bool:
        """``DeploymentProgressing``: more updated, ready or available pods, or fewer old ones."""
        old = self.d.get("status") or {}

        def get(s: Obj, field: str) -> int:
            return int(s.get(field) or 0)

        old_left = get(old, "replicas") - get(old, "updatedReplicas")
        new_left = get(status, "replicas") - get(status, "updatedReplicas")
        return (
            get(status, "updatedReplicas") > get(old, "updatedReplicas")
            or new_left < old_left
            or get(status, "readyReplicas") > get(old, "readyReplicas")
            or get(status, "availableReplicas") > get(old, "availableReplicas")
        )

    def deadline(self, status: Obj) -> datetime | None:
        """When the rollout times out without further progress (None: no deadline applies)."""
        cond = wl.get_condition(status, PROGRESSING)
        if not self.has_deadline() or cond is None or cond["reason"] == NEW_RS_AVAILABLE:
            return None
        seconds = int(self.spec["progressDeadlineSeconds"])
        return parse_rfc3339(cond["lastUpdateTime"]) + timedelta(seconds=seconds)

    def timed_out(self, status: Obj) -> bool:
        """``DeploymentTimedOut``: no progress reported within progressDeadlineSeconds."""
        cond = wl.get_condition(status, PROGRESSING)
        if cond is not None and cond["reason"] == TIMED_OUT:
            return True
        due = self.deadline(status)
        return due is not None and due < self.now

    def stuck_for(self, status: Obj) -> float | None:
        """``requeueStuckDeployment``: seconds until the deadline check is due, if one is."""
        current = wl.get_condition(self.d.get("status"), PROGRESSING)
        if current is None or self.complete(status) or current["reason"] == TIMED_OUT:
            return None
        due = self.deadline(self.d.get("status") or {})
        return None if due is None else max((due - self.now).total_seconds(), 0.0) + 0.25

    def check_paused(self) -> None:
        """Progressing Unknown DeploymentPaused/DeploymentResumed when pausing or resuming."""
        if not self.has_deadline():
            return
        cond = wl.get_condition(self.d.get("status"), PROGRESSING)
        if cond is not None and cond["reason"] == TIMED_OUT:
            return
        paused_before = cond is not None and cond["reason"] == PAUSED
        paused = bool(self.spec.get("paused"))
        if paused == paused_before:
            return
        status = copy.deepcopy(self.d.get("status") or {})
        if paused:
            cond = self.condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused")
        else:
            cond = self.condition(PROGRESSING, "Unknown", "DeploymentResumed", "Deployment is resumed")
        wl.set_condition(status, cond)
        self.write(None, status)

    # -- writing the Deployment ----------------------------------------------------------------

    def write(self, revision: str | None, status: Obj | None) -> None:
        """Set the revision annotation and the status where they changed."""
        meta = self.d["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if revision is not None and (meta.get("annotations") or {}).get(wl.REVISION) != revision:

            def annotate(draft: Obj) -> None:
                draft["metadata"].setdefault("annotations", {})[wl.REVISION] = revision
                draft["metadata"]["resourceVersion"] = meta["resourceVersion"]

            self.d = self.ctx.registry.mutate(DEPLOYMENTS, namespace, name, annotate, manager=wl.MANAGER)
        if status is not None and status != (self.d.get("status") or {}):
            expected = self.d["metadata"]["resourceVersion"]

            def put(draft: Obj) -> None:
                draft["status"] = status
                draft["metadata"]["resourceVersion"] = expected

            self.d = self.ctx.registry.mutate(
                DEPLOYMENTS, namespace, name, put, subresource="status", manager=wl.MANAGER
            )
