"""The service account controller: every namespace has a ServiceAccount named ``default``.

As upstream's, it makes one when a namespace appears (and at start, for namespaces a
previous daemon made), and again if someone deletes it; a namespace that is terminating
gets none. Pods name ``default`` when they name no service account, so clients such as the
official Python client's tests wait for it before they create pods.
"""

from __future__ import annotations

from collections.abc import Iterable

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.controllers.base import Controller, Key
from labkit.embedded.resources import lookup
from labkit.embedded.store import Event

NAMESPACES = lookup("", "v1", "namespaces")
ACCOUNTS = lookup("", "v1", "serviceaccounts")
MANAGER = "kube-controller-manager"
DEFAULT = "default"


class ServiceAccountsController(Controller):
    """Keeps a ``default`` ServiceAccount in every active namespace."""

    name = "serviceaccount"
    watches = (NAMESPACES.key, ACCOUNTS.key)

    def keys_for(self, event: Event) -> Iterable[Key]:
        """The namespace concerned: the one that changed, or the one whose ``default`` went."""
        meta = event.obj["metadata"]
        if event.key == NAMESPACES.key:
            return [("", meta["name"])]
        if event.type == "DELETED" and meta["name"] == DEFAULT:
            return [("", meta.get("namespace", ""))]
        return []

    async def reconcile(self, key: Key) -> float | None:
        """Create ``default`` in the namespace if it is active and lacks one."""
        namespace = key[1]
        ns = self.ctx.store.find(NAMESPACES.key, "", namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return None
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        if self.ctx.store.find(ACCOUNTS.key, namespace, DEFAULT) is not None:
            return None
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT}}
        try:
            self.ctx.registry.create(ACCOUNTS, namespace, body, manager=MANAGER)
        except ApiError as e:
            if e.code not in (404, 409):  # namespace gone, or made meanwhile: nothing to do
                raise
        return None
