"""The rules of reading and writing objects, without HTTP.

The registry stamps system fields, defaults, validates, enforces optimistic concurrency
and deletion semantics, and converts the store's errors into API errors, once. The HTTP
handlers and the in-process controllers both write through it.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from typing import Any

from labkit.embedded import store as st
from labkit.embedded.apiserver import defaults, hooks, validation
from labkit.embedded.apiserver.status import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    not_found,
)
from labkit.embedded.resources import ResourceType, by_kind, lookup
from labkit.shared.timeutil import rfc3339

NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATION_KINDS = {"Deployment", "ReplicaSet"}
NAMESPACES = lookup("", "v1", "namespaces")
assert NAMESPACES is not None


def random_suffix(n: int = 5) -> str:
    """A suffix for generateName, from the alphabet upstream uses."""
    return "".join(random.choice(NAME_ALPHABET) for _ in range(n))


class Registry:
    """Create, read, update, patch and delete objects with Kubernetes semantics."""

    def __init__(self, store: st.Store) -> None:
        self.store = store
        self.hooks = hooks.Hooks(self)
        self.toleration_seconds = defaults.DEFAULT_TOLERATION_SECONDS  # the cluster may set it shorter

    # -- reads ---------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """One object (a copy); 404 when absent."""
        obj = self.store.find(rt.key, namespace or "", name)
        if obj is None:
            raise not_found(rt, name)
        return obj

    def list(self, rt: ResourceType, namespace: str | None) -> tuple[list[dict[str, Any]], int]:
        """Objects of a type (shared, read-only) and the revision they were read at."""
        return self.store.list(rt.key, namespace)

    # -- create --------------------------------------------------------------------------

    def check_type(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """The body's apiVersion and kind must be those of the URL; fill them in when absent."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
            )
        if kind and kind != rt.kind:
            other = by_kind(api_version or rt.api_version, kind)
            hint = f" (send it to /{other.group_version}/.../{other.plural})" if other else ""
            raise bad_request(
                f"the kind in the data ({kind}) does not match the URL, which takes {rt.kind}{hint}"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not isinstance(obj.get("metadata", {}), dict):
            raise bad_request("metadata must be an object")
        obj.setdefault("metadata", {})

    def _place(self, rt: ResourceType, namespace: str | None, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or body_ns or "default"
        else:
            meta.pop("namespace", None)

    def prepare_create(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        manager: str = "",
        operation: str = "Update",
    ) -> dict[str, Any]:
        """Turn a client's object into the one to store (system fields, defaults), validated."""
        self.check_type(rt, obj)
        self._place(rt, namespace, obj)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{random_suffix()}"
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339()
        if rt.kind in GENERATION_KINDS:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if manager:
            meta["managedFields"] = [_managed(manager, operation, rt)]
        defaults.apply_defaults(rt, obj, toleration_seconds=self.toleration_seconds)
        validation.validate(rt, obj)
        if rt.namespaced:
            self._check_namespace(meta["namespace"])
        self.hooks.before_create(rt, obj)
        return obj

    def _check_namespace(self, namespace: str) -> None:
        ns = self.store.find(NAMESPACES.key, "", namespace)
        if ns is None:
            raise not_found(NAMESPACES, namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"unable to create new content in namespace {namespace} because it is being terminated",
                "Forbidden",
                {"name": namespace, "kind": "namespaces"},
            )

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        *,
        manager: str = "",
        dry_run: bool = False,
        operation: str = "Update",
    ) -> dict[str, Any]:
        """Create an object; 409 AlreadyExists, 422 Invalid, 404 for a missing namespace.
        ``operation`` is what managedFields records: Update, or Apply for server-side apply."""
        obj = self.prepare_create(rt, namespace, obj, manager, operation)
        if dry_run:
            return obj
        try:
            created = self.store.create(rt.key, obj)
        except st.AlreadyExistsError:
            raise already_exists(rt, obj["metadata"]["name"]) from None
        return created

    # -- update --------------------------------------------------------------------------

    def prepare_update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None = None,
        manager: str = "",
        operation: str = "Update",
    ) -> dict[str, Any]:
        """Merge a client's full object with the stored one under the update rules."""
        self.check_type(rt, new)
        meta, old_meta = new["metadata"], old["metadata"]
        name = old_meta["name"]
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != old_meta.get("namespace"):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if subresource == "status":
            result = _deep(old)
            result["status"] = new.get("status", {})
            rv = meta.get("resourceVersion")
            if rv:
                result["metadata"]["resourceVersion"] = rv
            return result
        if meta.get("uid") and meta["uid"] != old_meta.get("uid"):
            raise conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old_meta.get('uid')}",
            )
        for field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
            "generation",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if "status" in rt.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        defaults.apply_defaults(rt, new, toleration_seconds=self.toleration_seconds)
        if rt.kind in GENERATION_KINDS and new.get("spec") != old.get("spec"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if manager:
            meta["managedFields"] = _merge_managed(old_meta.get("managedFields", []), manager, operation, rt)
        validation.validate(rt, new, old=old)
        self.hooks.before_update(rt, old, new)
        return new

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        new: dict[str, Any],
        *,
        subresource: str | None = None,
        manager: str = "",
        dry_run: bool = False,
        operation: str = "Update",
    ) -> dict[str, Any]:
        """Replace an object (PUT). A stale resourceVersion in ``new`` is a 409 Conflict."""
        old = self.get(rt, namespace, name)
        expected = (new.get("metadata") or {}).get("resourceVersion") or None
        result = self.prepare_update(rt, old, new, subresource, manager, operation)
        return self._commit_update(rt, old, result, expected, dry_run)

    def _commit_update(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], expected: str | None, dry_run: bool
    ) -> dict[str, Any]:
        name = old["metadata"]["name"]
        if expected and expected != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        if dry_run:
            return new
        meta = new["metadata"]
        if (
            meta.get("deletionTimestamp")
            and old["metadata"].get("finalizers")
            and not meta.get("finalizers")
            and not meta.get("deletionGracePeriodSeconds")  # a pod still stopping: its kubelet finishes
        ):
            return self._remove(rt, new)  # the last finalizer is gone: so is the object
        if _same(old, new):
            return old  # nothing changed: no new revision, no event
        try:
            updated = self.store.update(rt.key, new, expected or None)
        except st.ConflictError:
            raise conflict(rt, name) from None
        except st.NotFoundError:
            raise not_found(rt, name) from None
        return updated

    def mutate(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        subresource: str | None = None,
        manager: str = "",
        dry_run: bool = False,
        operation: str = "Update",
    ) -> dict[str, Any]:
        """Read, change with ``change`` (which edits in place or returns a new object), write.
        A resourceVersion that ``change`` sets must match the stored one (409 otherwise)."""
        old = self.get(rt, namespace, name)
        draft = _deep(old)
        changed = change(draft)
        new = draft if changed is None else changed
        if not isinstance(new, dict):
            raise bad_request("the patched object is not an object")
        new.setdefault("metadata", {})
        if not isinstance(new["metadata"], dict):
            raise bad_request("metadata must be an object")
        expected = new["metadata"].get("resourceVersion")
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        result = self.prepare_update(rt, old, new, subresource, manager, operation)
        return self._commit_update(rt, old, result, expected, dry_run)

    # -- delete --------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete an object. Returns the object and whether it is gone already (False while
        finalizers, a pod's graceful shutdown or a namespace's contents keep it, with a
        deletionTimestamp). ``propagationPolicy`` Foreground and Orphan add the finalizers the
        garbage collector acts on; a pod on a node gets its grace period to stop."""
        options = options or {}
        obj = self.get(rt, namespace, name)
        meta = obj["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, "
                f"UID in object meta: {meta.get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise conflict(
                rt,
                name,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion')}",
            )
        self.hooks.before_delete(rt, obj)
        if dry_run:
            return obj, True
        grace = self.hooks.grace_period(rt, obj, options)
        if meta.get("deletionTimestamp"):
            if grace == 0 and not meta.get("finalizers"):  # a forced delete of a terminating pod
                return self._remove(rt, obj), True
            return obj, False
        finalizers = list(meta.get("finalizers") or [])
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "")
        if policy in ("Foreground", "Orphan"):
            finalizer = "foregroundDeletion" if policy == "Foreground" else "orphan"
            if finalizer not in finalizers:
                finalizers.append(finalizer)
        if finalizers or grace or self.hooks.delete_later(rt, obj, options):
            meta["deletionTimestamp"] = rfc3339()
            meta["deletionGracePeriodSeconds"] = grace or 0
            if finalizers:
                meta["finalizers"] = finalizers
            return self.store.update(rt.key, obj), False
        return self._remove(rt, obj), True

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        try:
            gone = self.store.delete(rt.key, meta.get("namespace", ""), meta["name"])
        except st.NotFoundError:
            raise not_found(rt, meta["name"]) from None
        return gone

    def finish_deletion(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        """Remove an object whose deletion was pending (a pod's containers stopped, a namespace
        emptied). If finalizers still hold it, only record that its shutdown is over (grace 0),
        so that removing the last finalizer removes it. True if it is gone."""
        obj = self.store.find(rt.key, namespace or "", name)
        if obj is None:
            return True
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp"):
            return False
        if meta.get("finalizers"):
            if meta.get("deletionGracePeriodSeconds"):
                done = copy.deepcopy(obj)
                done["metadata"]["deletionGracePeriodSeconds"] = 0
                self.store.update(rt.key, done)
            return False
        self._remove(rt, obj)
        return True


def _managed(manager: str, operation: str, rt: ResourceType) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": rt.api_version,
        "time": rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    }


def _merge_managed(
    entries: list[dict[str, Any]], manager: str, operation: str, rt: ResourceType
) -> list[dict[str, Any]]:
    kept = [e for e in entries if not (e.get("manager") == manager and e.get("operation") == operation)]
    return [*kept, _managed(manager, operation, rt)]


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal but for resourceVersion and managedFields."""
    ignore = ("resourceVersion", "managedFields")

    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in ignore}
        return {**obj, "metadata": meta}

    return strip(old) == strip(new)


def _deep(obj: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(obj)
