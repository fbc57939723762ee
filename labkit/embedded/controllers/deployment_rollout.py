"""The Deployment controller's two strategies: RollingUpdate (the new ReplicaSet up within
maxSurge, the old ones down within maxUnavailable, unavailable pods first) and Recreate (the
old ReplicaSets to zero, their pods gone, then the new one at full size).

As upstream's ``rolling.go`` and ``recreate.go`` (``pkg/controller/deployment``).
"""

from __future__ import annotations

from labkit.embedded.controllers import workloads as wl
from labkit.embedded.controllers.deployment_scaling import ScalingPass, active_sets
from labkit.embedded.controllers.deployment_status import Obj
from labkit.embedded.resources import ResourceType, lookup

_PODS = lookup("", "v1", "pods")
assert _PODS is not None
PODS: ResourceType = _PODS


class RolloutPass(ScalingPass):
    """A pass's rollout of the Deployment's template by its strategy."""

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
        old = active_sets(self.latest_all(old))
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
        scaled = [self.scale_if_needed(rs, 0) for rs in active_sets(self.latest_all(old))]
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


def _available(rs: Obj) -> int:
    """Available pods a set will keep: never more than it asks for (a set just scaled down
    still counts the pods it is about to delete)."""
    return min(wl.status_count(rs, "availableReplicas"), wl.replicas_of(rs))
