"""Recording core/v1 Events, deduplicated the way kubelet and controllers do it."""

from __future__ import annotations

import time
from typing import Any

from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.resources import lookup
from labkit.shared.timeutil import rfc3339

EVENTS = lookup("", "v1", "events")
assert EVENTS is not None


class EventRecorder:
    """Writes Events about objects; a repeat of the same reason and message bumps ``count``."""

    _last_stamp = 0  # strictly increasing across recorders, so no two events share a name

    def __init__(self, registry: Registry, component: str, host: str = "") -> None:
        self.registry = registry
        self.component = component
        self.host = host
        self._seen: dict[tuple[str, str, str], str] = {}

    @staticmethod
    def _stamp() -> int:
        stamp = max(time.time_ns(), EventRecorder._last_stamp + 1)
        EventRecorder._last_stamp = stamp
        return stamp

    def record(
        self,
        obj: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        field_path: str = "",
        host: str = "",
    ) -> None:
        """Record (or count again) an event about ``obj``; never fails the caller."""
        assert EVENTS is not None
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", meta["name"]), reason, message)
        now = rfc3339()
        try:
            existing = self._seen.get(key)
            if existing is not None and self.registry.store.find(EVENTS.key, namespace, existing) is not None:

                def bump(ev: dict[str, Any]) -> None:
                    ev["count"] = int(ev.get("count", 1)) + 1
                    ev["lastTimestamp"] = now

                self.registry.mutate(EVENTS, namespace, existing, bump)
                return
            involved = {
                "kind": obj.get("kind"),
                "namespace": meta.get("namespace"),
                "name": meta["name"],
                "uid": meta.get("uid"),
                "apiVersion": obj.get("apiVersion"),
                "resourceVersion": meta.get("resourceVersion"),
            }
            if field_path:
                involved["fieldPath"] = field_path
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                # upstream names events <object>.<hex nanoseconds>: name order is creation order
                "metadata": {"name": f"{meta['name']}.{self._stamp():x}", "namespace": namespace},
                "involvedObject": {k: v for k, v in involved.items() if v is not None},
                "type": event_type,
                "reason": reason,
                "message": message,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {
                    "component": self.component,
                    **({"host": host or self.host} if host or self.host else {}),
                },
                "reportingComponent": self.component,
                "reportingInstance": host or self.host,
            }
            created = self.registry.create(EVENTS, namespace, event)
            self._seen[key] = created["metadata"]["name"]
        except ApiError:
            pass  # events are best effort, as upstream
