"""Recording core/v1 Events, correlated the way client-go's ``EventCorrelator`` does it.

* **Deduplication**: a repeat of the same event (object, type, reason, message) bumps ``count``.
* **Aggregation**: after :data:`MAX_SIMILAR` different messages of one reason about one object
  within :data:`AGGREGATE_SECONDS`, the rest go into one event whose message starts with
  ``(combined from similar events): `` and whose count grows (100,000 ``Created pod: ...``
  events make 11 Event objects, not 100,000).
* **Spam filter**: each distinct event may be recorded :data:`SPAM_BURST` times at once, then
  once every 5 minutes; the rest are dropped, as upstream drops them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.ratelimit import KeyedBuckets
from labkit.embedded.resources import lookup
from labkit.shared.timeutil import rfc3339

EVENTS = lookup("", "v1", "events")
assert EVENTS is not None
MAX_SIMILAR = 10  # upstream's maxEvents of the EventAggregator
AGGREGATE_SECONDS = 600.0  # upstream's aggregation interval
SPAM_BURST = 25  # upstream's EventSourceObjectSpamFilter: burst 25, one more every 300 s
SPAM_QPS = 1 / 300
CACHE_SIZE = 4096  # upstream's maxLruCacheEntries
COMBINED = "(combined from similar events): "


class EventRecorder:
    """Writes Events about objects; a repeat of the same reason and message bumps ``count``."""

    _last_stamp = 0  # strictly increasing across recorders, so no two events share a name

    def __init__(self, registry: Registry, component: str, host: str = "") -> None:
        self.registry = registry
        self.component = component
        self.host = host
        self._seen: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._similar: OrderedDict[tuple[str, str, str], tuple[float, set[str]]] = OrderedDict()
        self._spam = KeyedBuckets(SPAM_QPS, SPAM_BURST, CACHE_SIZE)

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
        who = str(meta.get("uid", meta["name"]))
        if not self._spam.take((who, event_type, reason, message)):
            return
        message, key = self._aggregate(who, event_type, reason, message)
        now = rfc3339()
        try:
            existing = self._seen.get(key)
            if existing is not None and self.registry.store.find(EVENTS.key, namespace, existing) is not None:
                self._seen.move_to_end(key)

                def bump(ev: dict[str, Any]) -> None:
                    ev["count"] = int(ev.get("count", 1)) + 1
                    ev["lastTimestamp"] = now
                    ev["message"] = message

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
            while len(self._seen) > CACHE_SIZE:
                self._seen.popitem(last=False)
        except ApiError:
            pass  # events are best effort, as upstream

    def _aggregate(
        self, who: str, event_type: str, reason: str, message: str
    ) -> tuple[str, tuple[str, str, str]]:
        """The message to record and the key to deduplicate by: the event's own, or, past
        :data:`MAX_SIMILAR` different messages, the combined event's."""
        similar_key = (who, event_type, reason)
        clock = time.monotonic()
        started, messages = self._similar.pop(similar_key, (clock, set()))
        if clock - started > AGGREGATE_SECONDS:
            started, messages = clock, set()
        self._similar[similar_key] = (started, messages)
        while len(self._similar) > CACHE_SIZE:
            self._similar.popitem(last=False)
        if message in messages or len(messages) < MAX_SIMILAR:
            messages.add(message)
            return message, (who, reason, message)
        return COMBINED + message, (who, reason, COMBINED)
