"""What a notebook made on a cluster, so that a reset can delete it.

Two records of the same thing: the objects this kernel applied (in memory, newest last, so a
reset deletes in reverse order), and two labels stamped on every applied object
(``labkit.dev/managed-by=labkit`` and ``labkit.dev/session=<id>``) so that a reset after a
kernel restart still finds them. The session id is a hash of the notebook's path when Jupyter
says it (``JPY_SESSION_NAME``), or of ``$LABKIT_SESSION``; a plain Python process gets a random one.
"""

from __future__ import annotations

import copy
import hashlib
import os
import secrets
from typing import Any

from labkit.errors import UsageError
from labkit.kube.apply import Applied, Manifest, apply_all, delete_all
from labkit.kube.http import Api, Resource
from labkit.shared.contract import MANAGED_BY, MANAGED_LABEL, SESSION_LABEL

SESSION_ENV = ("LABKIT_SESSION", "JPY_SESSION_NAME")
# kinds a controller or the cluster itself makes and cleans up: never searched by label
DERIVED = {"Event", "Endpoints", "EndpointSlice", "Lease", "ControllerRevision", "ReplicaSet"}
Key = tuple[str, str, "str | None", str]  # apiVersion, kind, namespace, name
Stored = dict[str, Any]  # an object as the API server stored it


def session_id(source: str | None = None) -> str:
    """A label-safe id for the notebook: a hash of ``source``, else of what the environment names."""
    source = source or next((os.environ[k] for k in SESSION_ENV if os.environ.get(k)), None)
    if not source:
        return secrets.token_hex(6)
    return hashlib.sha256(source.encode()).hexdigest()[:12]


class Record:
    """The objects one notebook session made, by apiVersion, kind, namespace and name."""

    def __init__(self, session: str) -> None:
        self.session = session
        self._made: dict[Key, Manifest] = {}

    @property
    def labels(self) -> dict[str, str]:
        """The labels stamped on what this session applies."""
        return {MANAGED_LABEL: MANAGED_BY, SESSION_LABEL: self.session}

    @property
    def selector(self) -> str:
        """The label selector that finds this session's objects on the cluster."""
        return f"{SESSION_LABEL}={self.session}"

    def __len__(self) -> int:
        return len(self._made)

    def stamp(self, manifest: Manifest) -> Manifest:
        """A copy of ``manifest`` with this session's labels added (the user's labels stay)."""
        obj = copy.deepcopy(manifest.obj)
        meta = obj.setdefault("metadata", {})
        if isinstance(meta, dict):
            labels = meta.get("labels")
            meta["labels"] = {**(labels if isinstance(labels, dict) else {}), **self.labels}
        return Manifest(obj, manifest.document, manifest.line)

    def add(self, manifest: Manifest, namespace: str | None) -> None:
        """Remember an object (again: it moves to the newest end)."""
        key = (manifest.api_version, manifest.kind, namespace, manifest.name)
        self._made.pop(key, None)
        self._made[key] = _ref(manifest.api_version, manifest.kind, manifest.name, namespace)

    def apply(self, api: Api, manifests: list[Manifest], namespace: str) -> list[tuple[Applied, Stored]]:
        """Server-side apply ``manifests``, stamped with this session's labels, and remember each
        object; returns what :func:`~labkit.kube.apply.apply_all` does."""
        stamped = [self.stamp(m) for m in manifests]
        done = apply_all(api, stamped, namespace)
        for manifest, (applied, _) in zip(stamped, done, strict=True):
            self.add(manifest, applied.namespace)
        return done

    def ensure_namespace(self, api: Api, namespace: str) -> None:
        """Create ``namespace`` unless it exists, and remember it (so a reset deletes it)."""
        status, _ = api.request("GET", f"/api/v1/namespaces/{namespace}")
        if status != 404:
            return
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        manifest = self.stamp(Manifest(obj, 1, 1))
        status, made = api.request("POST", "/api/v1/namespaces", manifest.obj)
        if status >= 400:
            raise UsageError(f'cannot create namespace "{namespace}": {(made or {}).get("message")}')
        self.add(manifest, None)

    def discard(self, manifest: Manifest, namespace: str | None) -> None:
        """Forget an object (it was deleted)."""
        self._made.pop((manifest.api_version, manifest.kind, namespace, manifest.name), None)

    def reset(self, api: Api, namespace: str, timeout: float) -> list[str]:
        """Delete what this session made, newest first, then anything else carrying its label
        (from before a kernel restart); waits until they are gone. Returns what was deleted."""
        known = list(self._made)[::-1]
        found = [key for key in self._labelled(api) if key not in self._made]
        targets = [self._made[k] for k in known] + [_ref(*key[:2], key[3], key[2]) for key in found]
        # namespaces last: deleting one takes its contents with it, and would race their deletion
        targets.sort(key=lambda m: m.kind == "Namespace")
        if not targets:
            return []
        deleted: list[Applied] = delete_all(api, targets, namespace, wait=True, timeout=timeout)
        self._made.clear()
        return [d.ref for d in deleted if d.action == "deleted"]

    def _labelled(self, api: Api) -> list[Key]:
        """Every object on the cluster with this session's label that no owner will delete."""
        keys: list[Key] = []
        for resource in _deletable(api):
            status, listed = api.request("GET", resource.path(None), query={"labelSelector": self.selector})
            if status != 200 or not isinstance(listed, dict):
                continue
            api_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
            for item in listed.get("items") or []:
                meta = item.get("metadata") or {}
                if meta.get("ownerReferences") or meta.get("deletionTimestamp"):
                    continue
                keys.append((api_version, resource.kind, meta.get("namespace"), meta.get("name", "")))
        return keys


def _deletable(api: Api) -> list[Resource]:
    """The kinds the cluster serves (preferred versions) that can be listed and deleted."""
    versions = ["v1"]
    status, groups = api.request("GET", "/apis")
    if status == 200 and isinstance(groups, dict):
        for group in groups.get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("groupVersion")
            if preferred:
                versions.append(preferred)
    found: list[Resource] = []
    for version in versions:
        for resource in (api.resources(version) or {}).values():
            if resource.kind not in DERIVED and {"list", "delete"} <= resource.verbs:
                found.append(resource)
    return found


def _ref(api_version: str, kind: str, name: str, namespace: str | None) -> Manifest:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return Manifest({"apiVersion": api_version, "kind": kind, "metadata": meta}, 0, 0)
