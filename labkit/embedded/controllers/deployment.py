"""The Deployment controller: rolls pod templates out through ReplicaSets.

As upstream's (``pkg/controller/deployment``): one ReplicaSet per template, named
``<deployment>-<pod-template-hash>``; rolling updates bounded by maxSurge and
maxUnavailable, or Recreate; revisions and history cleanup; proportional scaling; pause;
and the status and conditions ``kubectl rollout status`` reads. This module picks the
Deployments to look at; each pass is one :class:`_Pass` over a fresh copy of one, built in
layers: ``deployment_status`` (what a pass knows, status and conditions) under
``deployment_revisions`` (the new ReplicaSet, revisions) under ``deployment_scaling``
(resizing, proportional scaling, cleanup) under ``deployment_rollout`` (the strategies).
"""

from __future__ import annotations

from collections.abc import Iterable

from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers import workloads as wl
from labkit.embedded.controllers.base import Controller, Key, owner_key
from labkit.embedded.controllers.deployment_revisions import COMPONENT, REPLICASETS
from labkit.embedded.controllers.deployment_rollout import RolloutPass
from labkit.embedded.controllers.deployment_status import DEPLOYMENTS
from labkit.embedded.store import DELETED, Event
from labkit.shared import timeutil


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


class _Pass(RolloutPass):
    """One ``syncDeployment`` over a Deployment and the ReplicaSets it owns."""

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
