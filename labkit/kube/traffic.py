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

import http.client
import ipaddress
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from labkit.errors import ClusterError, UsageError
from labkit.kube.client import KubeClient
from labkit.kube.models import Requests, RequestSample
from labkit.shared.contract import BALANCING_ANNOTATION, RECORDS_PATH
from labkit.shared.podports import pod_address

if TYPE_CHECKING:
    import pandas as pd

ROUTES = ("auto", "service", "nodeport", "proxy", "pinned")
MODES = ("random", "round-robin", "client-ip")


@dataclass
class _Attempt:
    """One request while a run is under way: the pod that served it is filled in afterwards."""

    i: int
    status: int | None
    latency_ms: float
    conn: int  # which connection carried it (requests on a keep-alive connection share one)
    body: bytes = b""
    error: str = ""
    pod: str | None = None
    node: str | None = None


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


class _Target:
    """Where requests go, and how to open a connection there."""

    def __init__(
        self,
        host: str,
        port: int,
        prefix: str = "",
        connect: Callable[[], http.client.HTTPConnection] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.headers = headers or {}
        self._connect = connect

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._connect is not None:
            return self._connect()
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def service_port(svc: Any, port: str | int | None) -> Any:
    """The port of a Service with this number or name (None: its first); UsageError naming its ports."""
    ports = svc.spec.ports or []
    if not ports:
        raise UsageError(f'service "{svc.metadata.name}" has no ports')
    if port is None:
        return ports[0]
    for p in ports:
        if port in (p.name, p.port):
            return p
    names = ", ".join(str(p.name or p.port) for p in ports)
    raise UsageError(f'service "{svc.metadata.name}" has no port {port!r}', f"its ports: {names}")


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _ready_pods(kube: KubeClient, namespace: str, name: str) -> list[Any]:
    endpoints = kube.call(kube.core.read_namespaced_endpoints, name, namespace)
    addresses = [a for subset in endpoints.subsets or [] for a in subset.addresses or []]
    return [a for a in addresses if a.target_ref is not None]


def _pinned_target(kube: KubeClient, namespace: str, name: str, svc_port: Any, timeout: float) -> _Target:
    ready = _ready_pods(kube, namespace, name)
    if not ready:
        raise ClusterError(
            f'service "{name}" has no ready endpoints to pin a connection to',
            "check the pods behind it: kubectl get pods -l <its selector>",
        )
    pod_name = ready[0].target_ref.name
    status, pod = kube.get_json(f"/api/v1/namespaces/{namespace}/pods/{pod_name}")
    target = svc_port.target_port if svc_port.target_port is not None else svc_port.port
    address = pod_address(pod, target) if status == 200 and isinstance(pod, dict) else None
    if address is not None and _is_loopback(address[0]):  # the embedded cluster's pod IPs are loopback
        return _Target(*address)
    raise UsageError(
        f'cannot pin a connection to pod "{pod_name}" from here',
        f"run `kubectl port-forward svc/{name} 8080:{svc_port.port}` and send requests to 127.0.0.1:8080",
    )


def _target(kube: KubeClient, svc: Any, svc_port: Any, via: str, timeout: float) -> _Target:
    name, namespace = svc.metadata.name, svc.metadata.namespace
    if via == "service":
        if not _is_loopback(svc.spec.cluster_ip):
            raise UsageError(
                f'the ClusterIP of "{name}" ({svc.spec.cluster_ip}) is not reachable from here',
                'use via="proxy" (any cluster) or via="nodeport"',
            )
        return _Target(svc.spec.cluster_ip, svc_port.port)
    if via == "nodeport":
        if not svc_port.node_port:
            raise UsageError(
                f'service "{name}" has no nodePort (it is of type {svc.spec.type})',
                'make it `type: NodePort`, or use via="service" or via="proxy"',
            )
        return _Target("127.0.0.1", svc_port.node_port)
    if via == "proxy":
        port_ref = svc_port.name or svc_port.port
        prefix = f"{kube.base_path}/api/v1/namespaces/{namespace}/services/{name}:{port_ref}/proxy"
        return _Target(kube.host, kube.port, prefix, lambda: kube.connection(timeout), kube.headers())
    return _pinned_target(kube, namespace, name, svc_port, timeout)


def _send(
    target: _Target,
    path: str,
    n: int,
    keep_alive: bool,
    timeout: float,
    progress: Callable[[int, int], None] | None,
) -> list[_Attempt]:
    samples: list[_Attempt] = []
    conn: http.client.HTTPConnection | None = None
    opened = 0
    for i in range(n):
        start = time.perf_counter()
        try:
            if conn is None:
                opened += 1
                conn = target.connection(timeout)
                conn.connect()
            headers = dict(target.headers)
            if not keep_alive:
                headers["Connection"] = "close"
            conn.request("GET", target.prefix + path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            samples.append(_Attempt(i, response.status, (time.perf_counter() - start) * 1000, opened, body))
            if not keep_alive or response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            reason = (
                "connection refused (no ready endpoints?)"
                if isinstance(e, ConnectionRefusedError)
                else f"{type(e).__name__}: {e}"
            )
            samples.append(_Attempt(i, None, (time.perf_counter() - start) * 1000, opened, error=reason))
            if conn is not None:
                conn.close()
                conn = None
        if progress is not None:
            progress(i + 1, n)
    if conn is not None:
        conn.close()
    return samples


def _from_records(
    kube: KubeClient, namespace: str, name: str, since: float, samples: list[_Attempt], via: str
) -> bool:
    """Fill in pods from the cluster's traffic records; False if the cluster keeps none."""
    status, body = kube.get_json(RECORDS_PATH.format(ns=namespace, name=name) + f"?since={since:.6f}")
    if status != 200 or not isinstance(body, dict):
        return False
    wanted = {"service": "clusterip", "nodeport": "nodeport", "proxy": "apiserver-proxy", "pinned": None}[via]
    if wanted is None:
        return False
    records = sorted((r for r in body.get("items", []) if r.get("via") == wanted), key=lambda r: r["seq"])
    answered = [s for s in samples if s.status is not None]
    if wanted == "apiserver-proxy":  # one record per request
        units: list[list[_Attempt]] = [[s] for s in answered]
    else:  # one record per connection; the requests are sent one after another, so order aligns them
        by_conn: dict[int, list[_Attempt]] = {}
        for s in samples:
            by_conn.setdefault(s.conn, []).append(s)
        units = list(by_conn.values())
        if len(records) != len(units):  # failed connects left no record: align the answered ones
            units = [u for u in units if any(s.status is not None for s in u)]
    if len(records) != len(units):
        return False
    for unit, record in zip(units, records, strict=True):
        for s in unit:
            s.pod, s.node = record.get("pod"), record.get("node")
    return True


def _from_responses(samples: list[_Attempt], pod_names: set[str], nodes: dict[str, str]) -> bool:
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


def set_mode(kube: KubeClient, namespace: str, name: str, mode: str) -> None:
    """Set a Service's balancing on the embedded cluster: random or round-robin per connection,
    or client-ip (sessionAffinity: ClientIP)."""
    if mode not in MODES:
        raise UsageError(f"unknown balancing mode {mode!r}", f"choose one of: {', '.join(MODES)}")
    affinity = "ClientIP" if mode == "client-ip" else "None"
    annotations = {BALANCING_ANNOTATION: None if mode == "client-ip" else mode}
    patch = {"metadata": {"annotations": annotations}, "spec": {"sessionAffinity": affinity}}
    kube.call(kube.core.patch_namespaced_service, name, namespace, patch)


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
    progress: Callable[[int, int], None] | None = None,
) -> TrafficResult:
    """Send ``n`` GET requests to a Service and return who served each (see the module docstring).
    ``mode`` first sets the Service's balancing (embedded cluster only)."""
    if via not in ROUTES:
        raise UsageError(f"unknown route via={via!r}", f"choose one of: {', '.join(ROUTES)}")
    if n < 1:
        raise UsageError(f"n must be at least 1, not {n}")
    if mode is not None:
        set_mode(kube, namespace, service, mode)
    svc = kube.call(kube.core.read_namespaced_service, service, namespace)
    svc_port = service_port(svc, port)
    if via == "auto":
        via = "service" if _is_loopback(svc.spec.cluster_ip) else "proxy"
    notes: list[str] = []
    ready = _ready_pods(kube, namespace, service) if svc.spec.selector else []
    if svc.spec.selector and not ready:
        notes.append(f'service "{service}" has no ready endpoints: every request will fail')
    target = _target(kube, svc, svc_port, via, timeout)
    since = time.time() - 0.5
    samples = _send(target, path if path.startswith("/") else "/" + path, n, keep_alive, timeout, progress)
    pods = kube.call(kube.core.list_namespaced_pod, namespace).items
    nodes = {p.metadata.name: p.spec.node_name for p in pods}
    if _from_records(kube, namespace, service, since, samples, via):
        source = "records"
    elif _from_responses(samples, set(nodes), nodes):
        source = "response"
        if any(s.pod is None and s.status is not None for s in samples):
            notes.append("some answers named no pod: those requests have no pod")
    else:
        source = "unknown"
        notes.append(
            "this cluster keeps no traffic records and the app's answers name no pod: "
            "make the app answer with its pod name (the HOSTNAME environment variable)"
        )
    served = {s.pod for s in samples if s.pod}
    if via == "pinned":
        notes.append(
            "a pinned connection, like `kubectl port-forward svc/...`, goes to one pod chosen once: "
            "the Service never balances it; use via='service' or via='proxy' to see the spread"
        )
    elif keep_alive and via != "proxy" and len(served) == 1 and len(ready) > 1:
        notes.append(
            "one keep-alive connection stays on the pod it reached: kube-proxy balances connections, "
            "not requests; send with keep_alive=False to see the spread"
        )
    if mode is None:
        mode = (svc.metadata.annotations or {}).get(BALANCING_ANNOTATION) or (
            "client-ip" if svc.spec.session_affinity == "ClientIP" else None
        )
    requests = Requests(
        RequestSample(s.i, s.status, s.latency_ms, s.conn, s.pod, s.node, s.error or None, mode, via)
        for s in samples
    )
    return TrafficResult(service, namespace, via, keep_alive, mode, source, requests, notes)
