"""The traffic record: which endpoint served each connection or request of a Service.

A :class:`Record` is made when an endpoint is picked (so a client that reads the record right
after its last response finds every one of its requests) and updated as the connection runs:
bytes each way, then the outcome and duration when it ends. Each Service keeps the most recent
records in a bounded ring.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

OK = "ok"
NO_ENDPOINTS = "no-endpoints"
CONNECT_FAILED = "connect-failed"
OUTCOMES = (OK, NO_ENDPOINTS, CONNECT_FAILED)
VIAS = ("clusterip", "nodeport", "loadbalancer", "apiserver-proxy", "http-proxy", "port-forward")
RING_SIZE = 100_000


@dataclass(slots=True)
class Record:
    """One connection (Service listeners) or one request (the proxies) and who served it.

    ``port`` is the Service port, ``endpoint`` the pod IP and target port a real cluster would
    connect to; ``bytes_in`` flowed from the client, ``bytes_out`` back to it. ``status`` is the
    HTTP status for per-request paths, ``duration`` the seconds until it ended (None while open).
    """

    seq: int
    time: float
    namespace: str
    service: str
    port: int
    port_name: str
    client: str
    via: str
    mode: str
    pod: str | None
    node: str | None
    pod_ip: str | None
    endpoint: str | None
    outcome: str
    status: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    duration: float | None = None

    def finish(self, outcome: str | None = None, status: int | None = None) -> None:
        """Mark the end: its outcome if it changed, its HTTP status if it has one."""
        if outcome is not None:
            self.outcome = outcome
        if status is not None:
            self.status = status
        if self.duration is None:
            self.duration = time.time() - self.time

    def as_dict(self) -> dict[str, Any]:
        """A plain copy (JSON-ready)."""
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(Record))


class RecordLog:
    """The rings of records, one per Service (namespace, name)."""

    def __init__(self, size: int = RING_SIZE) -> None:
        self.size = size
        self._rings: dict[tuple[str, str], deque[Record]] = {}
        self._seq = itertools.count(1)

    def add(self, **values: Any) -> Record:
        """Make a record (``seq`` and ``time`` are filled in) and keep it."""
        record = Record(seq=next(self._seq), time=time.time(), **values)
        key = (record.namespace, record.service)
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = deque(maxlen=self.size)
        ring.append(record)
        return record

    def records(self, namespace: str, service: str, since: float | None = None) -> list[dict[str, Any]]:
        """The kept records of a Service, oldest first; only those after ``since`` (a Unix time)
        if given."""
        ring = self._rings.get((namespace, service), ())
        return [r.as_dict() for r in ring if since is None or r.time > since]

    def clear(self, namespace: str, service: str) -> None:
        """Forget a Service's records."""
        self._rings.pop((namespace, service), None)
