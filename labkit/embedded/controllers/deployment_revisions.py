"""The Deployment controller's ReplicaSets and revisions: finding the new ReplicaSet or creating
it (``<deployment>-<pod-template-hash>``, bumping ``collisionCount`` when the name is taken)
at the size maxSurge allows, keeping the revision annotations in step, and a pass's writes of
ReplicaSets.

As upstream's ``getAllReplicaSetsAndSyncRevision`` and ``getNewReplicaSet``
(``pkg/controller/deployment/sync.go``).
"""

from __future__ import annotations

import copy

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.controllers import workloads as wl
from labkit.embedded.controllers.deployment_status import PROGRESSING, Obj, PassState
from labkit.embedded.resources import ResourceType, lookup


def _type(group: str, plural: str) -> ResourceType:
    rt = lookup(group, "v1", plural)
    assert rt is not None
    return rt


REPLICASETS = _type("apps", "replicasets")
COMPONENT = "deployment-controller"


class RevisionPass(PassState):
    """A pass's ReplicaSet bookkeeping: the new set and its revision, and the writes of sets."""

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

    # -- writing ReplicaSets -------------------------------------------------------------------

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


def _min_ready(obj: Obj) -> int:
    return int(obj["spec"].get("minReadySeconds") or 0)


def _set_min_ready(obj: Obj, seconds: int) -> None:
    if seconds:
        obj["spec"]["minReadySeconds"] = seconds
    else:
        obj["spec"].pop("minReadySeconds", None)
