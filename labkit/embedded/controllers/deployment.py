"""The Deployment controller: rolls pod templates out through ReplicaSets.

As upstream's (``pkg/controller/deployment``): one ReplicaSet per template, named
``<deployment>-<pod-template-hash>``; rolling updates bounded by maxSurge and
maxUnavailable, or Recreate; revisions and history cleanup; proportional scaling; pause;
and the status and conditions ``kubectl rollout status`` reads. Each pass is one
:class:`_Pass` over a fresh copy of the Deployment.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers import workloads as wl
from labkit.embedded.controllers.base import Controller, Key, owner_key
from labkit.embedded.controllers.deployment_status import DEPLOYMENTS, MAX_INT32, PROGRESSING, PassState
from labkit.embedded.resources import ResourceType, lookup
from labkit.embedded.store import DELETED, Event
from labkit.shared import timeutil

Obj = dict[str, Any]


def _type(group: str, plural: str) -> ResourceType:
    rt = lookup(group, "v1", plural)
    assert rt is not None
    return rt


REPLICASETS = _type("apps", "replicasets")
PODS = _type("", "pods")
COMPONENT = "deployment-controller"


class DeploymentController(Controller):
    """Keeps each Deployment's ReplicaSets rolling towards its template and replicas."""

    name = COMPONENT
    watches = ("apps/deployments", "apps/replicasets", "core/pods")
    coalesce = {"apps/replicasets": 0.05, "core/pods": 0.05}

    def __init__(self, ctx: ClusterContext, now: wl.Clock = timeutil.now) -> None:
        super().__init__(ctx)
        self.now = now

    def keys_for(self, event: Event) -> Iterable[Key]:
        """A ReplicaSet concerns its Deployment (an orphan: every Deployment that matches it); a
        deleted pod concerns the Deployment of its ReplicaSet (Recreate waits for old pods)."""
        if event.key == "apps/replicasets":
            owner = owner_key(event.obj, "Deployment")
            if owner is not None:
                return [owner]
            if wl.controller_of(event.obj) is not None:
                return []
            labels = event.obj["metadata"].get("labels")
            items, _ = self.ctx.store.list(DEPLOYMENTS.key, event.namespace)
            return [
                (event.namespace, d["metadata"]["name"])
                for d in items
                if wl.selector_matcher(d["spec"].get("selector"))(labels)
            ]
        if event.key == "core/pods":
            rs_key = owner_key(event.obj, "ReplicaSet") if event.type == DELETED else None
            rs = self.ctx.store.find(REPLICASETS.key, *rs_key) if rs_key else None
            owner = owner_key(rs, "Deployment") if rs else None
            return [owner] if owner else []
        return super().keys_for(event)

    async def reconcile(self, key: Key) -> float | None:
        """One pass over a Deployment; returns when to look again for a progress deadline."""
        deployment = self.ctx.store.find(DEPLOYMENTS.key, *key)
        if deployment is None:
            return None
        return _Pass(self.ctx, deployment, self.now()).run()


class _Pass(PassState):
    """One ``syncDeployment`` over a Deployment and the ReplicaSets it owns."""

    # -- the top level -------------------------------------------------------------------------

    def run(self) -> float | None:
        """Claim the ReplicaSets, then act as upstream's syncDeployment does."""
        namespace = self.d["metadata"]["namespace"]
        candidates, _ = self.ctx.store.list(REPLICASETS.key, namespace)
        for rs in wl.claim(self.ctx, REPLICASETS, self.d, candidates):
            self.sets[rs["metadata"]["uid"]] = rs
        if self.d["metadata"].get("deletionTimestamp"):
            new, old = self.sync_revision(create=False)
            self.sync_status([*old, new], new)
            return None
        self.check_paused()
        if self.spec.get("paused") or self.is_scaling_event():
            self.sync()
        elif (self.spec.get("strategy") or {}).get("type") == "Recreate":
            self.rollout_recreate()
        else:
            self.rollout_rolling()
        return self.requeue

    # -- finding and creating the new ReplicaSet ---------------------------------------------

    def find_new(self) -> Obj | None:
        """The oldest owned ReplicaSet whose template is the Deployment's (but for the hash)."""
        for rs in wl.by_creation(self.sets.values()):
            if wl.equal_ignore_hash(rs["spec"].get("template") or {}, self.spec.get("template") or {}):
                return rs
        return None

    def sync_revision(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision``: the new set (created if asked) with the next
        revision and the old sets; the Deployment takes the new set's revision."""
        new = self.find_new()
        skip = new["metadata"]["uid"] if new else None
        old = [rs for rs in self.sets.values() if rs["metadata"]["uid"] != skip]
        next_revision = max((wl.revision(rs) for rs in old), default=0) + 1
        if new is not None:
            draft = copy.deepcopy(new)
            changed = wl.set_new_rs_annotations(self.d, draft, next_revision, exists=True)
            if changed or _min_ready(draft) != _min_ready(self.d):
                _set_min_ready(draft, _min_ready(self.d))
                return self.update_rs(draft), old
            status = copy.deepcopy(self.d.get("status") or {})
            if self.has_deadline() and wl.get_condition(status, PROGRESSING) is None:
                message = f'Found new replica set "{new["metadata"]["name"]}"'
                wl.set_condition(status, self.condition(PROGRESSING, "True", "FoundNewReplicaSet", message))
            self.write(str(wl.revision(new)), status)
            return new, old
        if not create:
            return None, old
        return self.create_new(old, next_revision), old

    def create_new(self, old: list[Obj], next_revision: int) -> Obj:
        """Create the ReplicaSet for the current template; a name taken by another template bumps
        ``collisionCount`` and retries on the next pass."""
        status = copy.deepcopy(self.d.get("status") or {})
        template = copy.deepcopy(self.spec.get("template") or {})
        pod_hash = wl.template_hash(template, status.get("collisionCount"))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), wl.HASH_LABEL: pod_hash}
        selector = copy.deepcopy(self.spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), wl.HASH_LABEL: pod_hash}
        name = f"{self.d['metadata']['name']}-{pod_hash}"
        namespace = self.d["metadata"]["namespace"]
        rs: Obj = {
            "apiVersion": REPLICASETS.api_version,
            "kind": REPLICASETS.kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(tmeta["labels"]),
                "ownerReferences": [wl.controller_ref(self.d)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        _set_min_ready(rs, _min_ready(self.d))
        rs["spec"]["replicas"] = self.new_rs_replicas([*old, rs], rs)
        wl.set_new_rs_annotations(self.d, rs, next_revision, exists=False)
        existed = False
        try:
            created = self.ctx.registry.create(REPLICASETS, namespace, rs, manager=wl.MANAGER)
        except ApiError as e:
            found = (
                self.ctx.store.find(REPLICASETS.key, namespace, name) if e.reason == "AlreadyExists" else None
            )
            if found is None:
                self.report_create_failure(name, e)
                raise
            ours = (wl.controller_of(found) or {}).get("uid") == self.d["metadata"]["uid"]
            if not (ours and wl.equal_ignore_hash(self.spec["template"], found["spec"]["template"])):
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                self.write(None, status)
                raise
            created, existed = found, True
        self.sets[created["metadata"]["uid"]] = created
        replicas = wl.replicas_of(created)
        if not existed and replicas > 0:
            self.scaling_event(f"Scaled up replica set {name} from 0 to {replicas}")
        if not existed and self.has_deadline():
            message = f'Created new replica set "{name}"'
            wl.set_condition(status, self.condition(PROGRESSING, "True", "NewReplicaSetCreated", message))
        self.write(str(next_revision), status)
        return created

    def report_create_failure(self, name: str, error: ApiError) -> None:
        """Progressing False ``ReplicaSetCreateError`` and a warning event."""
        message = f'Failed to create new replica set "{name}": {error.message}'
        if self.has_deadline():
            status = copy.deepcopy(self.d.get("status") or {})
            wl.set_condition(status, self.condition(PROGRESSING, "False", "ReplicaSetCreateError", message))
            self.write(None, status)
        self.ctx.event(self.d, COMPONENT, "Warning", "ReplicaSetCreateError", message)

    def new_rs_replicas(self, all_sets: list[Obj], new: Obj) -> int:
        """``NewRSNewReplicas``: Recreate takes all replicas at once; a rolling update adds as
        many as maxSurge leaves room for, never more than the desired count."""
        if (self.spec.get("strategy") or {}).get("type") == "Recreate":
            return self.desired
        surge, _ = wl.fenceposts(self.d)
        current = sum(wl.replicas_of(rs) for rs in all_sets)
        room = self.desired + surge - current
        if room <= 0:
            return wl.replicas_of(new)
        return wl.replicas_of(new) + min(room, self.desired - wl.replicas_of(new))

    # -- scaling -------------------------------------------------------------------------------

    def scale_rs(self, rs: Obj, replicas: int) -> bool:
        """Set a ReplicaSet's size and replica annotations; an event when the size changes."""
        current = self.latest(rs)
        assert current is not None
        draft = copy.deepcopy(current)
        surge, _ = wl.fenceposts(self.d)
        annotations_changed = wl.set_replicas_annotations(draft, self.desired, self.desired + surge)
        before = wl.replicas_of(current)
        if before == replicas and not annotations_changed:
            return False
        draft["spec"]["replicas"] = replicas
        updated = self.update_rs(draft)
        if before != replicas:
            way = "up" if before < replicas else "down"
            name = updated["metadata"]["name"]
            self.scaling_event(f"Scaled {way} replica set {name} from {before} to {replicas}")
        return before != replicas

    def scale_if_needed(self, rs: Obj, replicas: int) -> bool:
        """``scaleReplicaSetAndRecordEvent``: only when the size differs."""
        current = self.latest(rs)
        return (
            current is not None and wl.replicas_of(current) != replicas and self.scale_rs(current, replicas)
        )

    def update_rs(self, draft: Obj) -> Obj:
        """Write a ReplicaSet (409 if it changed since it was read)."""
        meta = draft["metadata"]
        updated = self.ctx.registry.update(
            REPLICASETS, meta["namespace"], meta["name"], draft, manager=wl.MANAGER
        )
        self.sets[updated["metadata"]["uid"]] = updated
        return updated

    def scaling_event(self, message: str) -> None:
        """A ScalingReplicaSet event on the Deployment."""
        self.ctx.event(self.d, COMPONENT, "Normal", "ScalingReplicaSet", message)

    def is_scaling_event(self) -> bool:
        """An active set records a desired size other than the Deployment's replicas."""
        new, old = self.sync_revision(create=False)
        for rs in _active(self.latest_all([*old, new])):
            desired = wl.annotation_int(rs, wl.DESIRED_REPLICAS)
            if desired is not None and desired != self.desired:
                return True
        return False

    def sync(self) -> None:
        """Scaling (or paused): resize the sets, clean up when paused, report status."""
        new, old = self.sync_revision(create=False)
        self.scale(self.latest(new), self.latest_all(old))
        if self.spec.get("paused"):
            self.cleanup(self.latest_all(old))
        self.sync_status([*old, new], new)

    def scale(self, new: Obj | None, old: list[Obj]) -> None:
        """Resize for a new replica count: the only active set takes it all; a saturated new set
        empties the old ones; otherwise every active set grows or shrinks in proportion."""
        only = _active_or_latest(new, old)
        if only is not None:
            self.scale_if_needed(only, self.desired)
            return
        if new is not None and self.is_saturated(new):
            for rs in _active(old):
                self.scale_if_needed(rs, 0)
            return
        if (self.spec.get("strategy") or {}).get("type") == "Recreate":
            return
        surge, _ = wl.fenceposts(self.d)
        active = _active([*old, *([new] if new else [])])
        allowed = self.desired + surge if self.desired > 0 else 0
        to_add = allowed - sum(wl.replicas_of(rs) for rs in active)
        newest_first = list(reversed(wl.by_creation(active)))
        ordered = sorted(
            newest_first if to_add > 0 else wl.by_creation(active), key=wl.replicas_of, reverse=True
        )
        sizes, added = [], 0
        for rs in ordered:
            share = self.proportion(rs, to_add, added)
            sizes.append(wl.replicas_of(rs) + share)
            added += share
        if ordered and to_add:
            sizes[0] = max(sizes[0] + to_add - added, 0)
        for rs, size in zip(ordered, sizes, strict=True):
            self.scale_rs(rs, size)

    def proportion(self, rs: Obj, to_add: int, added: int) -> int:
        """``GetProportion``: the set's share of the change, from the size it was made for."""
        replicas = wl.replicas_of(rs)
        if replicas == 0 or to_add == 0 or to_add == added:
            return 0
        if self.desired == 0:
            fraction = -replicas
        else:
            surge, _ = wl.fenceposts(self.d)
            annotated = wl.annotation_int(rs, wl.MAX_REPLICAS) or wl.status_count(self.d, "replicas")
            if not annotated:
                return 0
            fraction = int(replicas * (self.desired + surge) / annotated + 0.5) - replicas
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    def is_saturated(self, rs: Obj) -> bool:
        """The set holds and has available all the Deployment's replicas."""
        return (
            wl.replicas_of(rs) == self.desired
            and wl.annotation_int(rs, wl.DESIRED_REPLICAS) == self.desired
            and wl.status_count(rs, "availableReplicas") == self.desired
        )

    def cleanup(self, old: list[Obj]) -> None:
        """Delete the oldest empty sets beyond ``revisionHistoryLimit``."""
        limit = self.spec.get("revisionHistoryLimit")
        if limit is None or limit == MAX_INT32:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        alive.sort(key=lambda rs: (wl.revision(rs), rs["metadata"].get("creationTimestamp") or ""))
        for rs in alive[: max(len(alive) - int(limit), 0)]:
            observed = wl.status_count(rs, "observedGeneration")
            busy = wl.status_count(rs, "replicas") or wl.replicas_of(rs)
            if busy or int(rs["metadata"].get("generation") or 0) > observed:
                continue
            try:
                self.ctx.registry.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
            except ApiError as e:
                if e.code != 404:
                    raise
            self.sets.pop(rs["metadata"]["uid"], None)

    # -- rollouts ------------------------------------------------------------------------------

    def rollout_rolling(self) -> None:
        """Scale the new set up within maxSurge, else the old ones down within maxUnavailable."""
        new, old = self.sync_revision(create=True)
        assert new is not None
        if self.reconcile_new(new, old) or self.reconcile_old(new, old):
            self.sync_rollout_status([*old, new], new)
            return
        if self.complete(self.d.get("status") or {}):
            self.cleanup(self.latest_all(old))
        self.sync_rollout_status([*old, new], new)

    def reconcile_new(self, new: Obj, old: list[Obj]) -> bool:
        """Grow (or shrink) the new set towards the desired count."""
        current = wl.replicas_of(self.latest(new) or new)
        if current == self.desired:
            return False
        if current > self.desired:
            return self.scale_if_needed(new, self.desired)
        target = self.new_rs_replicas(self.latest_all([*old, new]), self.latest(new) or new)
        return self.scale_if_needed(new, target)

    def reconcile_old(self, new: Obj, old: list[Obj]) -> bool:
        """Shrink old sets: first their unavailable pods, then as availability allows."""
        old = _active(self.latest_all(old))
        if not old:
            return False
        new = self.latest(new) or new
        _, max_unavailable = wl.fenceposts(self.d)
        min_available = self.desired - max_unavailable
        new_unavailable = wl.replicas_of(new) - _available(new)
        total = sum(wl.replicas_of(rs) for rs in [*old, new])
        room = total - min_available - new_unavailable
        if room <= 0:
            return False
        cleaned = self.cleanup_unhealthy(old, room)
        return cleaned + self.scale_down_old(new, old, min_available) > 0

    def cleanup_unhealthy(self, old: list[Obj], room: int) -> int:
        """Drop old sets' unavailable replicas first: deleting them costs no availability."""
        done = 0
        for rs in wl.by_creation(old):
            rs = self.latest(rs) or rs
            unhealthy = wl.replicas_of(rs) - _available(rs)
            if done >= room:
                break
            if unhealthy <= 0:
                continue
            count = min(room - done, unhealthy)
            self.scale_if_needed(rs, wl.replicas_of(rs) - count)
            done += count
        return done

    def scale_down_old(self, new: Obj, old: list[Obj], min_available: int) -> int:
        """Scale old sets down, oldest first, by what is available beyond the minimum."""
        available = sum(_available(rs) for rs in self.latest_all([*old, new]))
        excess = available - min_available
        done = 0
        for rs in wl.by_creation(self.latest_all(old)):
            if done >= excess:
                break
            if wl.replicas_of(rs) == 0:
                continue
            count = min(wl.replicas_of(rs), excess - done)
            self.scale_if_needed(rs, wl.replicas_of(rs) - count)
            done += count
        return done

    def rollout_recreate(self) -> None:
        """Scale every old set to zero, wait until their pods are gone, then start the new set."""
        new, old = self.sync_revision(create=False)
        scaled = [self.scale_if_needed(rs, 0) for rs in _active(self.latest_all(old))]
        if any(scaled) or self.old_pods_running(new, old):
            self.sync_rollout_status([*old, new], new)
            return
        if new is None:
            new, old = self.sync_revision(create=True)
            assert new is not None
        self.scale_if_needed(new, self.desired)
        if self.complete(self.d.get("status") or {}):
            self.cleanup(self.latest_all(old))
        self.sync_rollout_status([*old, new], new)

    def old_pods_running(self, new: Obj | None, old: list[Obj]) -> bool:
        """Old sets still report replicas, or their pods (terminating ones too) still run."""
        if sum(wl.status_count(rs, "replicas") for rs in self.latest_all(old)) > 0:
            return True
        uids = {rs["metadata"]["uid"] for rs in old} - ({new["metadata"]["uid"]} if new else set())
        pods, _ = self.ctx.store.list(PODS.key, self.d["metadata"]["namespace"])
        return any(
            (wl.controller_of(p) or {}).get("uid") in uids
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            for p in pods
        )


def _active(sets: Iterable[Obj]) -> list[Obj]:
    """The sets that ask for pods."""
    return [rs for rs in sets if wl.replicas_of(rs) > 0]


def _available(rs: Obj) -> int:
    """Available pods a set will keep: never more than it asks for (a set just scaled down
    still counts the pods it is about to delete)."""
    return min(wl.status_count(rs, "availableReplicas"), wl.replicas_of(rs))


def _active_or_latest(new: Obj | None, old: list[Obj]) -> Obj | None:
    """``FindActiveOrLatest``: the only active set, else the newest one if none is active."""
    if new is None and not old:
        return None
    newest_old = list(reversed(wl.by_creation(old)))
    active = _active([*newest_old, *([new] if new else [])])
    if not active:
        return new if new is not None else newest_old[0]
    return active[0] if len(active) == 1 else None


def _min_ready(obj: Obj) -> int:
    return int(obj["spec"].get("minReadySeconds") or 0)


def _set_min_ready(obj: Obj, seconds: int) -> None:
    if seconds:
        obj["spec"]["minReadySeconds"] = seconds
    else:
        obj["spec"].pop("minReadySeconds", None)
