"""The ReplicaSet controller: keeps ``spec.replicas`` pods of a template running.

As upstream's (``pkg/controller/replicaset``): it claims the pods its selector matches
(adopting orphans, releasing pods whose labels moved away), creates missing pods in
slow-start batches of at most :attr:`ReplicaSetController.burst` per pass, deletes surplus
pods in upstream's order of preference, and reports counts in ``status``.
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from functools import cmp_to_key
from typing import Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers import workloads as wl
from labkit.embedded.controllers.base import Controller, Key, owner_key
from labkit.embedded.ratelimit import TokenBucket
from labkit.embedded.resources import ResourceType, lookup
from labkit.embedded.store import Event
from labkit.shared import timeutil
from labkit.shared.timeutil import parse_rfc3339

Obj = dict[str, Any]


def _type(group: str, plural: str) -> ResourceType:
    rt = lookup(group, "v1", plural)
    assert rt is not None
    return rt


PODS = _type("", "pods")
REPLICASETS = _type("apps", "replicasets")
COMPONENT = "replicaset-controller"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


class ReplicaSetController(Controller):
    """Creates and deletes pods so each ReplicaSet has the replicas it asks for."""

    name = COMPONENT
    watches = ("apps/replicasets", "core/pods")
    coalesce = {"core/pods": 0.05}
    burst = 500  # pods created or deleted per pass at most (upstream's burstReplicas)
    # The controller's writes are rate-limited like kube-controller-manager's API client
    # (--kube-api-qps 20, --kube-api-burst 30 upstream; more here, so labs scale quickly):
    # 100,000 replicas become pods at this pace while the API stays responsive.
    create_qps = 50.0
    create_burst = 100

    def __init__(self, ctx: ClusterContext, now: wl.Clock = timeutil.now) -> None:
        super().__init__(ctx)
        self.now = now
        self.limiter = TokenBucket(self.create_qps, self.create_burst)
        self._created = 0  # pods created by the current pass
        self._not_before: dict[Key, float] = {}  # monotonic time of the next pass of a large set

    def keys_for(self, event: Event) -> Iterable[Key]:
        """A pod concerns its controlling ReplicaSet; an orphan concerns every set that matches it."""
        if event.key != "core/pods":
            return super().keys_for(event)
        owner = owner_key(event.obj, "ReplicaSet")
        if owner is not None:
            return [owner]
        if wl.controller_of(event.obj) is not None:
            return []
        labels = event.obj["metadata"].get("labels")
        sets, _ = self.ctx.store.list(REPLICASETS.key, event.namespace)
        return [
            (event.namespace, rs["metadata"]["name"])
            for rs in sets
            if wl.selector_matcher(rs["spec"].get("selector"))(labels)
        ]

    async def reconcile(self, key: Key) -> float | None:
        """Claim pods, create or delete the difference, write status; look again when more
        remain to create or a Ready pod will become available after ``minReadySeconds``."""
        namespace, name = key
        rs = self.ctx.store.find(REPLICASETS.key, namespace, name)
        if rs is None:
            self._not_before.pop(key, None)
            return None
        started = time.monotonic()
        wait = self._not_before.get(key, 0.0) - started
        if wait > 0:
            return wait  # a large set was reconciled moments ago: look again soon, not now
        try:
            return await self._reconcile(key, rs)
        finally:
            # A pass over N pods costs O(N): keep this set's share of the loop under a tenth.
            self._not_before[key] = time.monotonic() + 9 * (time.monotonic() - started)

    async def _reconcile(self, key: Key, rs: Obj) -> float | None:
        namespace, _ = key
        candidates, _ = self.ctx.store.list(PODS.key, namespace)
        pods = wl.claim(self.ctx, PODS, rs, [p for p in candidates if wl.is_active(p)])
        diff = len(pods) - wl.replicas_of(rs)
        error: ApiError | None = None
        self._created = 0
        if not rs["metadata"].get("deletionTimestamp"):
            error = await self._manage(rs, pods, diff)
        now = self.now()
        self._write_status(rs, _status(rs, pods, error, now))
        if error is not None:
            raise error  # the base class retries with back-off
        if diff < 0 and self._created < -diff and not rs["metadata"].get("deletionTimestamp"):
            return max(self.limiter.wait(), 0.25)  # more to create when the limiter allows
        return _next_available(pods, int(rs["spec"].get("minReadySeconds") or 0), now)

    async def _manage(self, rs: Obj, pods: list[Obj], diff: int) -> ApiError | None:
        if diff < 0:
            return await self._create(rs, min(-diff, self.burst))
        if diff > 0:
            doomed = pods_to_delete(pods, self._related(rs, pods), min(diff, self.burst), self.now())
            return self._delete(rs, doomed)
        return None

    async def _create(self, rs: Obj, count: int) -> ApiError | None:
        """Slow start: batches of 1, 2, 4, ... pods, as many as the rate limiter allows now; a
        batch with a failure ends the pass."""
        count = min(count, self.limiter.available())
        batch, done = 1, 0
        while done < count:
            size = min(batch, count - done)
            failure: ApiError | None = None
            for _ in range(size):
                self.limiter.take()
                self._created += 1
                failure = self._create_one(rs) or failure
            done += size
            if failure is not None:
                return failure
            batch *= 2
            await asyncio.sleep(0)  # let the scheduler and kubelets run between batches
        return None

    def _create_one(self, rs: Obj) -> ApiError | None:
        try:
            pod = self.ctx.registry.create(
                PODS, rs["metadata"]["namespace"], pod_from_template(rs), manager=wl.MANAGER
            )
        except ApiError as e:
            if not (e.code == 403 and "being terminated" in e.message):
                self.ctx.event(rs, COMPONENT, "Warning", "FailedCreate", f"Error creating: {e.message}")
            return e
        self.ctx.event(rs, COMPONENT, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        return None

    def _delete(self, rs: Obj, doomed: list[Obj]) -> ApiError | None:
        failure: ApiError | None = None
        for pod in doomed:
            name = pod["metadata"]["name"]
            try:
                self.ctx.registry.delete(PODS, pod["metadata"]["namespace"], name)
            except ApiError as e:
                if e.code == 404:
                    continue
                self.ctx.event(rs, COMPONENT, "Warning", "FailedDelete", f"Error deleting: {e.message}")
                failure = e
                continue
            self.ctx.event(rs, COMPONENT, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return failure

    def _related(self, rs: Obj, pods: list[Obj]) -> list[Obj]:
        """Pods of every ReplicaSet with the same controller (the sets of one Deployment), to
        rank pods by how many siblings share their node."""
        owner = wl.controller_of(rs)
        if owner is None:
            return pods
        namespace = rs["metadata"]["namespace"]
        sets, _ = self.ctx.store.list(REPLICASETS.key, namespace)
        uids = {
            s["metadata"]["uid"] for s in sets if (wl.controller_of(s) or {}).get("uid") == owner.get("uid")
        }
        candidates, _ = self.ctx.store.list(PODS.key, namespace)
        return [p for p in candidates if (wl.controller_of(p) or {}).get("uid") in uids]

    def _write_status(self, rs: Obj, status: Obj) -> None:
        meta = rs["metadata"]
        current = self.ctx.store.find(REPLICASETS.key, meta["namespace"], meta["name"])
        if current is None or current.get("status") == status:
            return

        def put(draft: Obj) -> None:
            draft["status"] = status

        self.ctx.registry.mutate(
            REPLICASETS, meta["namespace"], meta["name"], put, subresource="status", manager=wl.MANAGER
        )


def pod_from_template(rs: Obj) -> Obj:
    """A new pod for a ReplicaSet (``GetPodFromTemplate``): the template's labels, annotations,
    finalizers and spec, ``generateName: <set>-`` and a controller reference to the set."""
    template = rs["spec"].get("template") or {}
    tmeta = template.get("metadata") or {}
    meta: Obj = {"generateName": f"{rs['metadata']['name']}-", "namespace": rs["metadata"]["namespace"]}
    for field in ("labels", "annotations", "finalizers"):
        if tmeta.get(field):
            meta[field] = copy.deepcopy(tmeta[field])
    meta["ownerReferences"] = [wl.controller_ref(rs)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec"))}


# -- which pods go first ---------------------------------------------------------------------


def pods_to_delete(pods: list[Obj], related: list[Obj], count: int, now: datetime) -> list[Obj]:
    """The ``count`` pods to delete first, in ``ActivePodsWithRanks`` order: unscheduled before
    scheduled; Pending, Unknown, Running; not Ready before Ready; lower deletion cost; more
    siblings on the same node; Ready more recently; more restarts; created more recently (the
    times on a logarithmic scale, ties broken by uid)."""
    on_node = Counter(p["spec"].get("nodeName", "") for p in related if wl.is_active(p))

    def order(a: Obj, b: Obj) -> int:
        if _before(a, b, on_node, now):
            return -1
        return 1 if _before(b, a, on_node, now) else 0

    return sorted(pods, key=cmp_to_key(order))[:count]


def _before(a: Obj, b: Obj, on_node: Counter[str], now: datetime) -> bool:
    """Whether ``a`` should be deleted before ``b``."""
    node_a, node_b = a["spec"].get("nodeName", ""), b["spec"].get("nodeName", "")
    if node_a != node_b and not (node_a and node_b):
        return not node_a
    phase_a, phase_b = (_PHASE_ORDER.get((p.get("status") or {}).get("phase", ""), 0) for p in (a, b))
    if phase_a != phase_b:
        return phase_a < phase_b
    if wl.is_ready(a) != wl.is_ready(b):
        return not wl.is_ready(a)
    cost_a, cost_b = _deletion_cost(a), _deletion_cost(b)
    if cost_a != cost_b:
        return cost_a < cost_b
    if on_node[node_a] != on_node[node_b]:
        return on_node[node_a] > on_node[node_b]
    if wl.is_ready(a):
        ready_a, ready_b = ((wl.ready_condition(p) or {}).get("lastTransitionTime") for p in (a, b))
        if ready_a != ready_b:
            return _newer(a, b, ready_a, ready_b, now)
    if wl.max_restarts(a) != wl.max_restarts(b):
        return wl.max_restarts(a) > wl.max_restarts(b)
    created_a, created_b = (p["metadata"].get("creationTimestamp") for p in (a, b))
    if created_a != created_b:
        return _newer(a, b, created_a, created_b, now)
    return False


def _newer(a: Obj, b: Obj, time_a: str | None, time_b: str | None, now: datetime) -> bool:
    """A missing time first, then the more recent on a log2 scale of age; equal ranks by uid."""
    if not time_a or not time_b:
        return not time_a
    diff = _log_age(time_a, now) - _log_age(time_b, now)
    if diff == 0:
        return str(a["metadata"].get("uid", "")) < str(b["metadata"].get("uid", ""))
    return diff < 0


def _log_age(stamp: str, now: datetime) -> int:
    nanoseconds = (now - parse_rfc3339(stamp)).total_seconds() * 1e9
    return int(math.log2(nanoseconds)) if nanoseconds > 0 else -1


def _deletion_cost(pod: Obj) -> int:
    try:
        return int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


# -- status ------------------------------------------------------------------------------------


def _status(rs: Obj, pods: list[Obj], error: ApiError | None, now: datetime) -> Obj:
    """``calculateStatus``: counts over the claimed active pods, the ReplicaFailure condition,
    the observed generation; zero counts left out as Go's ``omitempty`` does."""
    status = copy.deepcopy(rs.get("status") or {})
    min_ready = int(rs["spec"].get("minReadySeconds") or 0)
    template_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    counts = {
        "fullyLabeledReplicas": sum(
            all((p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items())
            for p in pods
        ),
        "readyReplicas": sum(wl.is_ready(p) for p in pods),
        "availableReplicas": sum(wl.available_in(p, min_ready, now) == 0.0 for p in pods),
        "observedGeneration": int(rs["metadata"].get("generation") or 0),
    }
    status["replicas"] = len(pods)
    for field, value in counts.items():
        if value:
            status[field] = value
        else:
            status.pop(field, None)
    failure = wl.get_condition(status, "ReplicaFailure")
    if error is not None and failure is None:
        reason = "FailedCreate" if len(pods) < wl.replicas_of(rs) else "FailedDelete"
        cond = {
            "type": "ReplicaFailure",
            "status": "True",
            "lastTransitionTime": wl.stamp(now),
            "reason": reason,
            "message": error.message,
        }
        status.setdefault("conditions", []).append(cond)
    elif error is None and failure is not None:
        wl.remove_condition(status, "ReplicaFailure")
    return status


def _next_available(pods: list[Obj], min_ready: int, now: datetime) -> float | None:
    """Seconds until the next Ready pod becomes available, if any is waiting for that."""
    waits = [w for p in pods if (w := wl.available_in(p, min_ready, now))]
    return min(waits) + 0.05 if waits else None
