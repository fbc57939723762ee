"""Who served each request of a traffic run: from the cluster's records, or from the answers.

The embedded cluster records every connection its Service listeners balance (and every request
its API-server proxy sends) with the pod and node chosen: :class:`RecordReader` matches them to
the requests, batch by batch. Elsewhere :func:`from_responses` reads the pod from what the app
answered (a JSON ``pod``/``hostname`` field, or a pod name in the body).
"""

from __future__ import annotations

import json
import re

from labkit.kube.client import KubeClient
from labkit.kube.traffic_routes import Attempt
from labkit.shared.contract import RECORDS_PATH

# the records' "via" for each route; a pinned connection bypasses the Service, so none
RECORDED_AS = {"service": "clusterip", "nodeport": "nodeport", "proxy": "apiserver-proxy", "pinned": None}


class RecordReader:
    """Reads a Service's traffic records after each batch, from where the last batch left off."""

    def __init__(self, kube: KubeClient, namespace: str, service: str, via: str, since: float) -> None:
        self.kube, self.path = kube, RECORDS_PATH.format(ns=namespace, name=service)
        self.wanted, self.since = RECORDED_AS[via], since
        self.by_conn: dict[int, tuple[str | None, str | None]] = {}  # keep-alive connections seen
        self.last_seq = self._latest_seq()  # records of earlier runs are not this run's

    def _latest_seq(self) -> int:
        if self.wanted is None:
            return -1
        status, body = self.kube.get_json(self.path + f"?since={self.since:.6f}")
        items = body.get("items", []) if status == 200 and isinstance(body, dict) else []
        if items:
            self.since = max(self.since, max(r.get("time", 0.0) for r in items) - 0.001)
        return max((r.get("seq", -1) for r in items), default=-1)

    def attribute(self, samples: list[Attempt]) -> bool:
        """Fill in the pods of one batch; False if the cluster keeps no records that match it."""
        if self.wanted is None:
            return False
        status, body = self.kube.get_json(self.path + f"?since={self.since:.6f}")
        if status != 200 or not isinstance(body, dict):
            return False
        new = [r for r in body.get("items", []) if r.get("seq", -1) > self.last_seq]
        records = sorted((r for r in new if r.get("via") == self.wanted), key=lambda r: r["seq"])
        for s in samples:  # a keep-alive connection from an earlier batch: its record was read then
            if s.conn in self.by_conn:
                s.pod, s.node = self.by_conn[s.conn]
        fresh = [s for s in samples if s.conn not in self.by_conn]
        answered = [s for s in fresh if s.status is not None]
        if self.wanted == "apiserver-proxy":  # one record per request
            units: list[list[Attempt]] = [[s] for s in answered]
        else:  # one record per connection; requests go one after another, so the order aligns them
            grouped: dict[int, list[Attempt]] = {}
            for s in fresh:
                grouped.setdefault(s.conn, []).append(s)
            units = list(grouped.values())
            if len(records) != len(units):  # failed connects left no record: align the answered ones
                units = [u for u in units if any(s.status is not None for s in u)]
        if len(records) != len(units):
            return False
        for unit, record in zip(units, records, strict=True):
            for s in unit:
                s.pod, s.node = record.get("pod"), record.get("node")
            if self.wanted != "apiserver-proxy":
                self.by_conn[unit[0].conn] = (record.get("pod"), record.get("node"))
        if new:  # the next batch asks only for what came after these
            self.last_seq = max(r["seq"] for r in new)
            self.since = max(self.since, max(r.get("time", 0.0) for r in new) - 0.001)
        return True


def from_responses(samples: list[Attempt], pod_names: set[str], nodes: dict[str, str]) -> bool:
    """Fill in pods from what the apps answered: a JSON ``pod``/``hostname`` field or a known pod name."""
    found = False
    pattern = (
        re.compile("|".join(sorted((re.escape(p) for p in pod_names), key=len, reverse=True)))
        if pod_names
        else None
    )
    for s in samples:
        if s.status is None:
            continue
        pod = None
        try:
            data = json.loads(s.body)
            if isinstance(data, dict):
                pod = data.get("pod") or data.get("hostname")
                s.node = data.get("node") or None
        except ValueError:
            pass
        if pod is None and pattern is not None:
            match = pattern.search(s.body.decode(errors="replace"))
            pod = match.group(0) if match else None
        if pod:
            s.pod = str(pod)
            s.node = s.node or nodes.get(s.pod)
            found = True
    return found
