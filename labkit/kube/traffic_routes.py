"""Where a traffic run's requests go, and sending them: the routes of :mod:`labkit.kube.traffic`.

A :class:`Target` is an address (and, through the API server, a path prefix and headers);
:class:`Sender` sends requests there one after another, on a new connection each or on one
keep-alive connection that lasts across batches.
"""

from __future__ import annotations

import http.client
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkit.errors import ClusterError, UsageError
from labkit.kube.client import KubeClient
from labkit.shared.podports import pod_address

Progress = Callable[[int, int], None]  # (requests done, requests in the batch)


@dataclass
class Attempt:
    """One request while a run is under way: the pod that served it is filled in afterwards."""

    i: int
    status: int | None
    latency_ms: float
    conn: int  # which connection carried it (requests on a keep-alive connection share one)
    body: bytes = b""
    error: str = ""
    pod: str | None = None
    node: str | None = None


class Target:
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


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def ready_pods(kube: KubeClient, namespace: str, name: str) -> list[Any]:
    endpoints = kube.call(kube.core.read_namespaced_endpoints, name, namespace)
    addresses = [a for subset in endpoints.subsets or [] for a in subset.addresses or []]
    return [a for a in addresses if a.target_ref is not None]


def _pinned_target(kube: KubeClient, namespace: str, name: str, svc_port: Any, timeout: float) -> Target:
    ready = ready_pods(kube, namespace, name)
    if not ready:
        raise ClusterError(
            f'service "{name}" has no ready endpoints to pin a connection to',
            "check the pods behind it: kubectl get pods -l <its selector>",
        )
    pod_name = ready[0].target_ref.name
    status, pod = kube.get_json(f"/api/v1/namespaces/{namespace}/pods/{pod_name}")
    target = svc_port.target_port if svc_port.target_port is not None else svc_port.port
    address = pod_address(pod, target) if status == 200 and isinstance(pod, dict) else None
    if address is not None and is_loopback(address[0]):  # the embedded cluster's pod IPs are loopback
        return Target(*address)
    raise UsageError(
        f'cannot pin a connection to pod "{pod_name}" from here',
        f"run `kubectl port-forward svc/{name} 8080:{svc_port.port}` and send requests to 127.0.0.1:8080",
    )


def route_target(kube: KubeClient, svc: Any, svc_port: Any, via: str, timeout: float) -> Target:
    name, namespace = svc.metadata.name, svc.metadata.namespace
    if via == "service":
        if not is_loopback(svc.spec.cluster_ip):
            raise UsageError(
                f'the ClusterIP of "{name}" ({svc.spec.cluster_ip}) is not reachable from here',
                'use via="proxy" (any cluster) or via="nodeport"',
            )
        return Target(svc.spec.cluster_ip, svc_port.port)
    if via == "nodeport":
        if not svc_port.node_port:
            raise UsageError(
                f'service "{name}" has no nodePort (it is of type {svc.spec.type})',
                'make it `type: NodePort`, or use via="service" or via="proxy"',
            )
        return Target("127.0.0.1", svc_port.node_port)
    if via == "proxy":
        port_ref = svc_port.name or svc_port.port
        prefix = f"{kube.base_path}/api/v1/namespaces/{namespace}/services/{name}:{port_ref}/proxy"
        return Target(kube.host, kube.port, prefix, lambda: kube.connection(timeout), kube.headers())
    return _pinned_target(kube, namespace, name, svc_port, timeout)


class Sender:
    """Sends GET requests to one target; with keep-alive, one connection serves every batch."""

    def __init__(self, target: Target, path: str, keep_alive: bool, timeout: float) -> None:
        self.target, self.path, self.keep_alive, self.timeout = target, path, keep_alive, timeout
        self._conn: http.client.HTTPConnection | None = None
        self.opened = 0  # connections opened so far (the ids of Attempt.conn)

    def send(self, n: int, first: int = 0, progress: Progress | None = None) -> list[Attempt]:
        """Send ``n`` requests numbered from ``first``; ``progress(done, n)`` after each."""
        samples: list[Attempt] = []
        for k in range(n):
            samples.append(self._one(first + k))
            if progress is not None:
                progress(k + 1, n)
        return samples

    def _one(self, i: int) -> Attempt:
        start = time.perf_counter()
        try:
            if self._conn is None:
                self.opened += 1
                self._conn = self.target.connection(self.timeout)
                self._conn.connect()
            headers = dict(self.target.headers)
            if not self.keep_alive:
                headers["Connection"] = "close"
            self._conn.request("GET", self.target.prefix + self.path, headers=headers)
            response = self._conn.getresponse()
            body = response.read()
            sample = Attempt(i, response.status, (time.perf_counter() - start) * 1000, self.opened, body)
            if not self.keep_alive or response.will_close:
                self.close()
            return sample
        except (OSError, http.client.HTTPException) as e:
            reason = (
                "connection refused (no ready endpoints?)"
                if isinstance(e, ConnectionRefusedError)
                else f"{type(e).__name__}: {e}"
            )
            self.close()
            return Attempt(i, None, (time.perf_counter() - start) * 1000, self.opened, error=reason)

    def close(self) -> None:
        """Close the open connection, if any."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
