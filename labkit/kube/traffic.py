"""Send requests to a Service and see which replica served each: the request distribution.

Works on any cluster. The requests go through one of several routes:

- ``service``: the Service's own ClusterIP address (reachable from the host on the embedded
  cluster, whose ClusterIPs are loopback addresses);
- ``nodeport``: ``127.0.0.1:<nodePort>``;
- ``proxy``: the API server's service proxy, which picks a replica per request (any cluster);
- ``pinned``: one connection to one replica, as ``kubectl port-forward`` does: every request
  lands on the same pod.

Each request opens a new connection, or (``keep_alive=True``) all share one connection,
which shows why keep-alive clients look unbalanced: kube-proxy balances connections, not
requests. Who served a request comes from the cluster's traffic records where the cluster
keeps them (the embedded one does, for any app), else from the response (the tutorial apps
answer with their pod name); the result says which, or that it could not tell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from labkit.errors import UsageError
from labkit.kube.client import KubeClient
from labkit.kube.models import Requests, RequestSample
from labkit.kube.traffic_attribution import RecordReader, from_responses
from labkit.kube.traffic_routes import (
    Attempt,
    Progress,
    Sender,
    is_loopback,
    ready_pods,
    route_target,
    service_port,
)
from labkit.shared.contract import BALANCING_ANNOTATION

if TYPE_CHECKING:
    import pandas as pd

ROUTES = ("auto", "service", "nodeport", "proxy", "pinned")
MODES = ("random", "round-robin", "client-ip")


@dataclass
class TrafficResult:
    """The requests of one run. It reads as a DataFrame (``len()``, ``.head()``, ``result["pod"]``,
    one row per request: i, pod, node, status, latency_ms, mode, via, error); ``.summary()`` has
    one row per replica, and a notebook shows that summary."""

    service: str
    namespace: str
    via: str
    keep_alive: bool
    mode: str | None
    source: str  # "records", "response" or "unknown": where the pod of each request came from
    samples: Requests
    notes: list[str] = field(default_factory=list)

    @cached_property
    def frame(self) -> pd.DataFrame:
        """One row per request: i, pod, node, status, latency_ms, mode, via, error."""
        return self.samples.frame()

    @property
    def data(self) -> pd.DataFrame:
        """The same DataFrame as :attr:`frame`."""
        return self.frame

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: Any) -> Any:
        return self.frame[key]

    def __getattr__(self, name: str) -> Any:
        """Anything else a DataFrame has (``head``, ``groupby``, ``value_counts``, ...)."""
        if name.startswith("_") or name in ("frame", "samples"):
            raise AttributeError(name)
        return getattr(self.frame, name)

    def summary(self) -> pd.DataFrame:
        """One row per replica: requests, share of all requests (%), errors and mean latency."""
        frame = self.frame
        served = frame[frame["pod"].notna()]
        total = len(frame)
        groups = served.groupby(["pod", "node"], dropna=False)
        out = groups.agg(
            requests=("i", "count"),
            errors=("error", lambda e: int(e.notna().sum())),
            mean_latency_ms=("latency_ms", "mean"),
        ).reset_index()
        out["share_pct"] = (100.0 * out["requests"] / total).round(1) if total else 0.0
        out["mean_latency_ms"] = out["mean_latency_ms"].round(2)
        return out[["pod", "node", "requests", "share_pct", "errors", "mean_latency_ms"]].sort_values(
            "pod", ignore_index=True
        )

    @property
    def errors(self) -> int:
        """How many requests failed (no answer, or an HTTP status of 500 or more)."""
        return sum(1 for s in self.samples if s.error or (s.status or 0) >= 500)

    def _headline(self) -> str:
        route = (
            f"via {self.via}"
            + (", keep-alive" if self.keep_alive else "")
            + (f", {self.mode}" if self.mode else "")
        )
        return (
            f"{len(self)} requests to service/{self.service} ({route}): "
            f"{len({s.pod for s in self.samples if s.pod})} replicas answered, {self.errors} errors"
        )

    def __repr__(self) -> str:
        lines = [self._headline(), self.summary().to_string(index=False), *self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        notes = "".join(f"<p>{escape(n)}</p>" for n in self.notes)
        return f"<p>{escape(self._headline())}</p>{self.summary().to_html(index=False)}{notes}"


def set_mode(kube: KubeClient, namespace: str, name: str, mode: str) -> None:
    """Set a Service's balancing on the embedded cluster: random or round-robin per connection,
    or client-ip (sessionAffinity: ClientIP)."""
    if mode not in MODES:
        raise UsageError(f"unknown balancing mode {mode!r}", f"choose one of: {', '.join(MODES)}")
    affinity = "ClientIP" if mode == "client-ip" else "None"
    annotations = {BALANCING_ANNOTATION: None if mode == "client-ip" else mode}
    patch = {"metadata": {"annotations": annotations}, "spec": {"sessionAffinity": affinity}}
    kube.call(kube.core.patch_namespaced_service, name, namespace, patch)


class TrafficRun:
    """One run of requests to a Service, sent in batches: a widget draws between them, and
    :meth:`result` is what :func:`traffic` returns. ``mode`` first sets the Service's balancing
    (embedded cluster only)."""

    def __init__(
        self,
        kube: KubeClient,
        service: str,
        *,
        namespace: str = "default",
        port: str | int | None = None,
        via: str = "auto",
        keep_alive: bool = False,
        path: str = "/",
        mode: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        if via not in ROUTES:
            raise UsageError(f"unknown route via={via!r}", f"choose one of: {', '.join(ROUTES)}")
        if mode is not None:
            set_mode(kube, namespace, service, mode)
        self.kube, self.service, self.namespace, self.keep_alive = kube, service, namespace, keep_alive
        svc = kube.call(kube.core.read_namespaced_service, service, namespace)
        svc_port = service_port(svc, port)
        self.via = ("service" if is_loopback(svc.spec.cluster_ip) else "proxy") if via == "auto" else via
        self.notes: list[str] = []
        self.ready = ready_pods(kube, namespace, service) if svc.spec.selector else []
        if svc.spec.selector and not self.ready:
            self.notes.append(f'service "{service}" has no ready endpoints: every request will fail')
        self.mode = mode or (svc.metadata.annotations or {}).get(BALANCING_ANNOTATION) or (
            "client-ip" if svc.spec.session_affinity == "ClientIP" else None
        )
        target = route_target(kube, svc, svc_port, self.via, timeout)
        self._sender = Sender(target, path if path.startswith("/") else "/" + path, keep_alive, timeout)
        self._records = RecordReader(kube, namespace, service, self.via, time.time() - 0.5)
        self.source = ""  # "records", "response" or "unknown", decided by the first batch
        self._attempts: list[Attempt] = []

    def replicas(self) -> dict[str, str | None]:
        """The Service's ready endpoints now: pod name -> node."""
        return {a.target_ref.name: a.node_name for a in ready_pods(self.kube, self.namespace, self.service)}

    def send(self, n: int, progress: Progress | None = None) -> Requests:
        """Send ``n`` more requests and find who served each; returns them."""
        if n < 1:
            raise UsageError(f"n must be at least 1, not {n}")
        batch = self._sender.send(n, len(self._attempts), progress)
        if self.source in ("", "records") and self._records.attribute(batch):
            self.source = "records"
        else:
            pods = self.kube.call(self.kube.core.list_namespaced_pod, self.namespace).items
            nodes = {p.metadata.name: p.spec.node_name for p in pods}
            found = from_responses(batch, set(nodes), nodes)
            self.source = self.source or ("response" if found else "unknown")
        self._attempts += batch
        return self._samples(batch)

    def _samples(self, attempts: list[Attempt]) -> Requests:
        mode, via = self.mode, self.via
        return Requests(
            RequestSample(a.i, a.status, a.latency_ms, a.conn, a.pod, a.node, a.error or None, mode, via)
            for a in attempts
        )

    def result(self) -> TrafficResult:
        """Every request sent so far, with what the run noticed; closes a keep-alive connection."""
        self._sender.close()
        notes = list(self.notes)
        if self.source == "response" and any(a.pod is None and a.status is not None for a in self._attempts):
            notes.append("some answers named no pod: those requests have no pod")
        elif self.source == "unknown":
            notes.append(
                "this cluster keeps no traffic records and the app's answers name no pod: "
                "make the app answer with its pod name (the HOSTNAME environment variable)"
            )
        served = {a.pod for a in self._attempts if a.pod}
        if self.via == "pinned":
            notes.append(
                "a pinned connection, like `kubectl port-forward svc/...`, goes to one pod chosen once: "
                "the Service never balances it; use via='service' or via='proxy' to see the spread"
            )
        elif self.keep_alive and self.via != "proxy" and len(served) == 1 and len(self.ready) > 1:
            notes.append(
                "one keep-alive connection stays on the pod it reached: kube-proxy balances connections, "
                "not requests; send with keep_alive=False to see the spread"
            )
        samples = self._samples(self._attempts)
        return TrafficResult(self.service, self.namespace, self.via, self.keep_alive, self.mode,
                             self.source or "unknown", samples, notes)  # fmt: skip


def traffic(
    kube: KubeClient,
    service: str,
    n: int = 100,
    *,
    namespace: str = "default",
    port: str | int | None = None,
    via: str = "auto",
    keep_alive: bool = False,
    path: str = "/",
    mode: str | None = None,
    timeout: float = 5.0,
    progress: Progress | None = None,
) -> TrafficResult:
    """Send ``n`` GET requests to a Service and return who served each (see the module docstring).
    ``mode`` first sets the Service's balancing (embedded cluster only)."""
    if n < 1:
        raise UsageError(f"n must be at least 1, not {n}")
    run = TrafficRun(kube, service, namespace=namespace, port=port, via=via, keep_alive=keep_alive,
                     path=path, mode=mode, timeout=timeout)  # fmt: skip
    run.send(n, progress)
    return run.result()
