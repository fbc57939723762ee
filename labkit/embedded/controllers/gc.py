"""The garbage collector: deletes what no owner holds any more, as kube-controller-manager's does.

It follows ``metadata.ownerReferences`` across every served kind, in the three modes a
delete can ask for:

* **Background** (the default): the owner is gone at once; a dependent whose owners all
  are gone is deleted in turn (one that still has a live owner only loses the dangling
  reference).
* **Foreground**: the owner stays, with a deletionTimestamp and the ``foregroundDeletion``
  finalizer, while its dependents are deleted (a dependent with dependents of its own is
  deleted in the foreground too). Once no dependent with ``blockOwnerDeletion`` is left the
  finalizer goes, and with it the owner.
* **Orphan**: the owner's ``orphan`` finalizer makes its dependents drop their references
  to it; then the finalizer goes, and the dependents stay.

An index from uid to object and from owner uid to dependents is kept up to date from store
events (built by one scan at start, so it works after a restart): one change costs a look at
the objects it concerns, never a scan. The work queue's keys are ``(store key, uid)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.base import Controller, Key
from labkit.embedded.resources import RESOURCES, ResourceType, by_kind
from labkit.embedded.store import DELETED, Event

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
MANAGER = "kube-controller-manager"
_BY_KEY = {rt.key: rt for rt in RESOURCES}

Where = tuple[ResourceType, str, str]  # type, namespace ("" if cluster-scoped), name


def _uid(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("uid", ""))


def _refs(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(obj["metadata"].get("ownerReferences") or [])


def _deleting(obj: Mapping[str, Any], finalizer: str) -> bool:
    """Whether ``obj`` is being deleted and waits on ``finalizer``."""
    meta = obj["metadata"]
    return bool(meta.get("deletionTimestamp")) and finalizer in (meta.get("finalizers") or [])


class GarbageCollector(Controller):
    """Deletes dependents whose owners are gone, and carries out foreground and orphan deletion."""

    name = "garbage-collector"
    watches = tuple(rt.key for rt in RESOURCES)

    def __init__(self, ctx: ClusterContext) -> None:
        super().__init__(ctx)
        self._where: dict[str, Where] = {}
        self._owners: dict[str, tuple[str, ...]] = {}  # uid -> owner uids
        self._dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids

    # -- the index -----------------------------------------------------------------------------

    def initial_keys(self) -> Iterable[Key]:
        """Index every object; every object with owners or a pending deletion is looked at."""
        self._where.clear()
        self._owners.clear()
        self._dependents.clear()
        keys: list[Key] = []
        for rt in RESOURCES:
            for obj in self.ctx.store.list(rt.key)[0]:
                self._index(rt, obj)
                if _refs(obj) or _deleting(obj, FOREGROUND) or _deleting(obj, ORPHAN):
                    keys.append((rt.key, _uid(obj)))
        return keys

    def keys_for(self, event: Event) -> Iterable[Key]:
        """Keep the index; queue the object if it has owners or is being deleted with a
        finalizer of ours, its dependents when it is gone, and owners it stopped referring to."""
        rt = _BY_KEY[event.key]
        uid = _uid(event.obj)
        old = self._owners.get(uid, ())
        if event.type == DELETED:
            self._unindex(uid)
            return [self._key(d) for d in sorted(self._dependents.get(uid, ()))] + self._keys(old)
        self._index(rt, event.obj)
        new = self._owners.get(uid, ())
        keys = self._keys(o for o in old if o not in new)
        if new != old or _deleting(event.obj, FOREGROUND) or _deleting(event.obj, ORPHAN):
            keys.append((rt.key, uid))
        return keys

    def _index(self, rt: ResourceType, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        uid = _uid(obj)
        self._where[uid] = (rt, meta.get("namespace", ""), meta["name"])
        owners = tuple(str(ref.get("uid", "")) for ref in _refs(obj))
        old = self._owners.get(uid, ())
        if owners == old:
            return
        for owner in old:
            self._dependents.get(owner, set()).discard(uid)
        for owner in owners:
            self._dependents.setdefault(owner, set()).add(uid)
        if owners:
            self._owners[uid] = owners
        else:
            self._owners.pop(uid, None)

    def _unindex(self, uid: str) -> None:
        self._where.pop(uid, None)
        for owner in self._owners.pop(uid, ()):
            dependents = self._dependents.get(owner)
            if dependents is not None:
                dependents.discard(uid)
                if not dependents:
                    del self._dependents[owner]

    def _key(self, uid: str) -> Key:
        where = self._where.get(uid)
        return (where[0].key if where else "", uid)

    def _keys(self, uids: Iterable[str]) -> list[Key]:
        return [self._key(u) for u in uids if u in self._where]

    def _find(self, uid: str) -> tuple[Where, dict[str, Any]] | None:
        where = self._where.get(uid)
        if where is None:
            return None
        obj = self.ctx.store.find(where[0].key, where[1], where[2])
        if obj is None or _uid(obj) != uid:
            return None
        return where, obj

    def dependents(self, uid: str) -> list[str]:
        """The uids of the objects that name ``uid`` as an owner."""
        return sorted(self._dependents.get(uid, ()))

    # -- acting --------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> float | None:
        """Carry out the deletion mode of an owner being deleted, or check a dependent's owners."""
        await asyncio.sleep(0)
        found = self._find(key[1])
        if found is None:
            return None
        where, obj = found
        if _deleting(obj, ORPHAN):
            self._orphan(where, obj)
        elif _deleting(obj, FOREGROUND):
            self._delete_dependents(where, obj)
        elif not obj["metadata"].get("deletionTimestamp") and _refs(obj):
            self._check_owners(where, obj)
        return None

    def _owner_state(self, ref: Mapping[str, Any], namespace: str) -> str:
        """ "solid", "waiting" (being deleted in the foreground) or "absent"; an owner of a kind
        this cluster does not serve cannot be checked and counts as solid."""
        rt = by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if rt is None:
            return "solid"
        where = (rt, namespace if rt.namespaced else "", ref.get("name"))
        found = self._find(str(ref.get("uid", "")))
        if found is None or found[0] != where:
            return "absent"
        return "waiting" if _deleting(found[1], FOREGROUND) else "solid"

    def _check_owners(self, where: Where, obj: dict[str, Any]) -> None:
        states = {str(ref.get("uid", "")): self._owner_state(ref, where[1]) for ref in _refs(obj)}
        if "solid" in states.values():
            drop = {uid for uid, state in states.items() if state != "solid"}
            if drop:
                self._drop_refs(where, drop)
            return
        foreground = "waiting" in states.values() and bool(self._dependents.get(_uid(obj)))
        self._delete(where, _uid(obj), "Foreground" if foreground else "Background")

    def _delete_dependents(self, where: Where, owner: dict[str, Any]) -> None:
        uid = _uid(owner)
        for dependent in self.dependents(uid):
            found = self._find(dependent)
            if found is not None and not found[1]["metadata"].get("deletionTimestamp"):
                self._check_owners(*found)
        if not any(self._blocks(d, uid) for d in self.dependents(uid)):
            self._remove_finalizer(where, FOREGROUND)

    def _blocks(self, dependent: str, owner: str) -> bool:
        found = self._find(dependent)
        if found is None:
            return False
        return any(r.get("uid") == owner and r.get("blockOwnerDeletion") for r in _refs(found[1]))

    def _orphan(self, where: Where, owner: dict[str, Any]) -> None:
        uid = _uid(owner)
        for dependent in self.dependents(uid):
            found = self._find(dependent)
            if found is not None:
                self._drop_refs(found[0], {uid})
        self._remove_finalizer(where, ORPHAN)

    # -- writes --------------------------------------------------------------------------------

    def _drop_refs(self, where: Where, owners: set[str]) -> None:
        def change(obj: dict[str, Any]) -> None:
            kept = [r for r in _refs(obj) if r.get("uid") not in owners]
            if kept:
                obj["metadata"]["ownerReferences"] = kept
            else:
                obj["metadata"].pop("ownerReferences", None)

        self.ctx.registry.mutate(where[0], where[1] or None, where[2], change, manager=MANAGER)

    def _remove_finalizer(self, where: Where, finalizer: str) -> None:
        def change(obj: dict[str, Any]) -> None:
            kept = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
            if kept:
                obj["metadata"]["finalizers"] = kept
            else:
                obj["metadata"].pop("finalizers", None)

        self.ctx.registry.mutate(where[0], where[1] or None, where[2], change, manager=MANAGER)

    def _delete(self, where: Where, uid: str, policy: str) -> None:
        options = {"propagationPolicy": policy, "preconditions": {"uid": uid}}
        try:
            self.ctx.registry.delete(where[0], where[1] or None, where[2], options)
        except ApiError as e:
            if e.code != 404:  # gone already is what we wanted
                raise
