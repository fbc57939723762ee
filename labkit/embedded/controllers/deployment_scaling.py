"""The Deployment controller's resizing of ReplicaSets: one set's size and replica annotations,
proportional scaling when the replica count changes (or the Deployment is paused), and the
cleanup of old sets beyond ``revisionHistoryLimit``.

As upstream's ``sync``, ``scale`` and ``cleanupDeployment`` (``pkg/controller/deployment/sync.go``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.controllers import workloads as wl
from labkit.embedded.controllers.deployment_revisions import REPLICASETS, RevisionPass
from labkit.embedded.controllers.deployment_status import MAX_INT32, Obj


class ScalingPass(RevisionPass):
    """A pass's resizing of the Deployment's ReplicaSets."""

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

    def is_scaling_event(self) -> bool:
        """An active set records a desired size other than the Deployment's replicas."""
        new, old = self.sync_revision(create=False)
        for rs in active_sets(self.latest_all([*old, new])):
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
            for rs in active_sets(old):
                self.scale_if_needed(rs, 0)
            return
        if (self.spec.get("strategy") or {}).get("type") == "Recreate":
            return
        surge, _ = wl.fenceposts(self.d)
        active = active_sets([*old, *([new] if new else [])])
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


def active_sets(sets: Iterable[Obj]) -> list[Obj]:
    """The sets that ask for pods."""
    return [rs for rs in sets if wl.replicas_of(rs) > 0]


def _active_or_latest(new: Obj | None, old: list[Obj]) -> Obj | None:
    """``FindActiveOrLatest``: the only active set, else the newest one if none is active."""
    if new is None and not old:
        return None
    newest_old = list(reversed(wl.by_creation(old)))
    active = active_sets([*newest_old, *([new] if new else [])])
    if not active:
        return new if new is not None else newest_old[0]
    return active[0] if len(active) == 1 else None
