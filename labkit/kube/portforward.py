"""``lab.port_forward``: a local address that reaches one pod's port, as ``kubectl port-forward``.

The target is a pod (``web-1``, ``pod/web-1``), or a Service or Deployment whose ready pod is
picked once (``svc/web``, ``deploy/web``), as kubectl does: all traffic then goes to that one
pod, which is the point of the load-balancing lesson. A listener on 127.0.0.1 takes local
connections; each is carried over its own ``pods/portforward`` WebSocket (the official
client's ``portforward()``), so this works against any cluster.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit.errors import ClusterError, UsageError
from labkit.kube.traffic_routes import service_port

if TYPE_CHECKING:
    from labkit.kube.client import KubeClient

KINDS = {
    "pod": "pod", "pods": "pod", "po": "pod",
    "svc": "service", "service": "service", "services": "service",
    "deploy": "deployment", "deployment": "deployment", "deployments": "deployment",
}  # fmt: skip
CHUNK = 65536


@dataclass(frozen=True)
class Target:
    """The pod and port a forward reaches."""

    pod: str
    port: int


def resolve(kube: KubeClient, namespace: str, target: str, port: int | str) -> Target:
    """The pod and container port of ``target`` (a pod, ``svc/NAME`` or ``deploy/NAME``), with a
    Service port mapped to its targetPort as kubectl maps it."""
    kind, _, name = target.rpartition("/")
    kind = KINDS.get(kind.lower() if kind else "pod")
    if kind is None or not name:
        raise UsageError(f'cannot forward to "{target}"', "name a pod, svc/NAME or deploy/NAME")
    if kind == "pod":
        return Target(name, _number(kube.call(kube.core.read_namespaced_pod, name, namespace), port))
    if kind == "service":
        svc = kube.call(kube.core.read_namespaced_service, name, namespace)
        selector = svc.spec.selector or {}
        chosen = service_port(svc, int(port) if str(port).isdigit() else port)
        pod = _ready_pod(kube, namespace, selector, f"svc/{name}")
        target_port = chosen.target_port if chosen.target_port is not None else chosen.port
        return Target(pod.metadata.name, _number(pod, target_port))
    deployment = kube.call(kube.apps.read_namespaced_deployment, name, namespace)
    pod = _ready_pod(kube, namespace, deployment.spec.selector.match_labels or {}, f"deploy/{name}")
    return Target(pod.metadata.name, _number(pod, port))


def _ready_pod(kube: KubeClient, namespace: str, selector: dict[str, str], what: str) -> Any:
    labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods = kube.call(kube.core.list_namespaced_pod, namespace, label_selector=labels).items
    for pod in sorted(pods, key=lambda p: p.metadata.name):
        conditions = {c.type: c.status for c in (pod.status.conditions or [])}
        if pod.status.phase == "Running" and conditions.get("Ready") == "True":
            return pod
    raise ClusterError(
        f"{what} has no ready pod to forward to", "lab.pods() shows why its pods are not ready"
    )


def _number(pod: Any, port: int | str) -> int:
    """A port number, or a named containerPort of the pod."""
    text = str(port)
    if text.isdigit():
        return int(text)
    for container in pod.spec.containers or []:
        for declared in container.ports or []:
            if declared.name == text:
                return int(declared.container_port)
    raise UsageError(f'pod {pod.metadata.name} has no port named "{text}"')


@dataclass
class PortForward:
    """A running forward: ``url`` (``http://127.0.0.1:PORT/``) reaches ``target``'s port.
    Use it as a context manager, or call :meth:`close`."""

    kube: KubeClient
    namespace: str
    target: Target
    local_port: int = 0
    _server: socket.socket | None = field(default=None, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def url(self) -> str:
        """The local URL (HTTP) of the forwarded port."""
        return f"http://127.0.0.1:{self.local_port}/"

    def start(self) -> PortForward:
        """Listen on 127.0.0.1 (the given local port, or a free one)."""
        server = socket.create_server(("127.0.0.1", self.local_port))
        server.settimeout(0.2)
        self._server = server
        self.local_port = server.getsockname()[1]
        accept = threading.Thread(target=self._accept, name=f"port-forward {self.url}", daemon=True)
        accept.start()
        self._threads.append(accept)
        return self

    def close(self) -> None:
        """Stop listening and end every forwarded connection."""
        self._closed.set()
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            carry = threading.Thread(target=self._carry, args=(conn,), daemon=True)
            carry.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [carry]

    def _carry(self, conn: socket.socket) -> None:
        """One local connection, over its own forward, until either side ends."""
        from kubernetes.stream import portforward

        try:
            forward = portforward(
                self.kube.core.connect_get_namespaced_pod_portforward,
                self.target.pod,
                self.namespace,
                ports=str(self.target.port),
            )
        except Exception:  # the pod went away: the local client sees its connection close
            conn.close()
            return
        remote = forward.socket(self.target.port)
        remote.setblocking(True)
        conn.setblocking(True)
        try:
            _pipe(conn, remote, self._closed)
        finally:
            for sock in (conn, remote):
                with contextlib.suppress(OSError):
                    sock.close()
            forward.close()


def _pipe(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways until both sides have ended (or ``stop``)."""
    ends = {a: b, b: a}
    open_ = {a, b}
    while open_ and not stop.is_set():
        ready, _, _ = select.select(list(open_), [], [], 0.2)
        for sock in ready:
            try:
                data = sock.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                open_.discard(sock)
                with contextlib.suppress(OSError):
                    ends[sock].shutdown(socket.SHUT_WR)
                continue
            try:
                ends[sock].sendall(data)
            except OSError:
                return


def port_forward(
    kube: KubeClient, namespace: str, target: str, port: int | str, local_port: int = 0
) -> PortForward:
    """Start forwarding ``127.0.0.1:local_port`` (0: a free port) to ``target``'s ``port``."""
    return PortForward(kube, namespace, resolve(kube, namespace, target, port), local_port).start()
