"""The embedded target: start, stop and inspect embedded clusters (each a daemon process with a
state directory), and :class:`EmbeddedBackend`, the embedded cluster as a Lab's backend.

The client side only knows the daemon's state directory layout (:mod:`labkit.shared.layout`),
its module name, and the Kubernetes API it serves; it imports nothing of :mod:`labkit.embedded`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.clusters.base import ClusterBackend, ClusterInfo
from labkit.config import settings
from labkit.errors import ClusterError, UsageError
from labkit.images.builders import EmbeddedImageBuilder
from labkit.kube.http import Api, Endpoint, KeepAliveTransport
from labkit.shared.contract import ISOLATION_ANNOTATION, POWER_ANNOTATION
from labkit.shared.layout import DAEMON_MODULE, ClusterLayout, cluster_names, labkit_home
from labkit.shared.podports import pod_address

DEFAULT_NAME = "labkit"
EMBEDDED_NODES = 3  # a control plane and two workers, as the kind target


@dataclass(frozen=True)
class ClusterStatus:
    """What ``labkit cluster status`` reports."""

    name: str
    state: str  # "running", "stopped" or "absent"
    pid: int | None
    server: str | None
    kubeconfig: Path
    nodes: list[str]
    isolation: str = ""  # how its pods are isolated, as its nodes report it


class EmbeddedCluster:
    """One named embedded cluster, running or not."""

    def __init__(self, name: str = DEFAULT_NAME, home: Path | None = None) -> None:
        try:
            self.dir = ClusterLayout(name, home)
        except ValueError as e:
            raise UsageError(str(e)) from None
        self.name = name
        self.home = home or labkit_home()
        self._cached: tuple[int, Endpoint] | None = None  # (kubeconfig mtime, endpoint)

    # -- inspection ----------------------------------------------------------------------

    def running_pid(self) -> int | None:
        """The daemon's pid if it is running, else None (a stale pid file is ignored)."""
        pid = self.dir.pid()
        if pid is None:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists():
            try:
                if DAEMON_MODULE.encode() not in cmdline.read_bytes():
                    return None
            except OSError:
                return None
        return pid

    def request(
        self,
        path: str,
        timeout: float = 5.0,
        *,
        method: str = "GET",
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send a request to the running cluster's API (through :mod:`labkit.kube.http`); the JSON
        answer. An API error becomes a ClusterError carrying the server's message."""
        if not self.dir.kubeconfig.exists():
            raise ClusterError(f'cluster "{self.name}" has no kubeconfig yet', "start it: labkit cluster up")
        endpoint = self._endpoint()
        api = Api(endpoint, KeepAliveTransport(endpoint, timeout), hint=f"see its log: {self.dir.log}")
        try:
            status, answer = api.request(method, path, body, content_type=content_type)
        finally:
            api.close()
        if status >= 400:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise ClusterError(message or f"HTTP {status} from {path}")
        return answer

    def server(self) -> str | None:
        """The API server's URL, when the cluster has a kubeconfig."""
        if not self.dir.kubeconfig.exists():
            return None
        return self._endpoint().server

    def _endpoint(self) -> Endpoint:
        """The API server as the kubeconfig says, read again only when the daemon rewrote it
        (a restart picks a new port): polling loops and status calls reuse it."""
        stamp = self.dir.kubeconfig.stat().st_mtime_ns
        if self._cached is None or self._cached[0] != stamp:
            self._cached = (stamp, Endpoint.from_kubeconfig(self.dir.kubeconfig, self.dir.context))
        return self._cached[1]

    def status(self) -> ClusterStatus:
        """Running, stopped or absent, with its server and nodes when running."""
        pid = self.running_pid()
        nodes: list[str] = []
        isolation = ""
        if pid is not None:
            with contextlib.suppress(ClusterError):
                items = self.request("/api/v1/nodes").get("items", [])
                nodes = [n["metadata"]["name"] for n in items]
                notes = [(n["metadata"].get("annotations") or {}).get(ISOLATION_ANNOTATION) for n in items]
                isolation = next((n for n in notes if n), "")
        state = "running" if pid is not None else ("stopped" if self.dir.exists() else "absent")
        return ClusterStatus(
            self.name,
            state,
            pid,
            self.server() if self.dir.exists() else None,
            self.dir.kubeconfig,
            nodes,
            isolation,
        )

    # -- lifecycle -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.dir.path.mkdir(parents=True, exist_ok=True)
        with open(self.dir.path / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def up(self, nodes: int | None = None, timeout: float = 30.0, **settings: Any) -> bool:
        """Start the cluster unless it runs; True if this call started it. Returns once the API
        answers. ``settings`` change saved :class:`ClusterConfig` fields (backoff_base, ...)."""
        if nodes is not None and not 1 <= nodes <= 100:
            raise UsageError(f"--nodes must be between 1 and 100, not {nodes}")
        with self._lock():
            if self.running_pid() is not None:
                return False
            config = self.dir.load()
            if nodes is not None:
                config.nodes = nodes
            for key, value in settings.items():
                if value is not None:
                    setattr(config, key, value)
            self.dir.save(config)
            self._spawn(timeout)
            return True

    def _spawn(self, timeout: float) -> None:
        read_fd, write_fd = os.pipe()
        log = open(self.dir.log, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            cmd = [
                sys.executable,
                "-m",
                DAEMON_MODULE,
                "--name",
                self.name,
                "--home",
                str(self.home),
                "--ready-fd",
                str(write_fd),
            ]
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_package_root()), env.get("PYTHONPATH")]))
            proc = subprocess.Popen(
                cmd,
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                env=env,
            )
        finally:
            os.close(write_fd)
            log.close()
        try:
            line = _read_line(read_fd, timeout)
        finally:
            os.close(read_fd)
        if not line.startswith("ready"):
            if proc.poll() is None:
                proc.kill()
            raise ClusterError(
                f'cluster "{self.name}" did not start{" in time" if proc.poll() is None else ""}.'
                f"\n{_tail(self.dir.log)}",
                f"the full log is {self.dir.log}",
            )
        self.request("/version")

    def down(self, delete: bool = False, timeout: float = 10.0) -> bool:
        """Stop the cluster (its state is kept unless ``delete``); True if it was running."""
        with self._lock():
            pid = self.running_pid()
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and self.running_pid() == pid and _alive(pid):
                    time.sleep(0.02)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
            self.dir.pid_file.unlink(missing_ok=True)
        if delete and self.dir.path.exists():
            shutil.rmtree(self.dir.path)
        return pid is not None

    def set_node_power(self, node: str, on: bool, timeout: float = 10.0) -> dict[str, Any]:
        """Power a node off (its kubelet stops, its containers die) or on again; returns the Node.
        Powering on waits until the node reports Ready."""
        if self.running_pid() is None:
            raise ClusterError(f'cluster "{self.name}" is not running', "start it: labkit cluster up")
        names = [n["metadata"]["name"] for n in self.request("/api/v1/nodes").get("items", [])]
        if node not in names:
            raise UsageError(f'cluster "{self.name}" has no node "{node}"', f"its nodes: {', '.join(names)}")
        patch = {"metadata": {"annotations": {POWER_ANNOTATION: None if on else "off"}}}
        obj = self.request(
            f"/api/v1/nodes/{node}", method="PATCH", body=patch, content_type="application/merge-patch+json"
        )
        deadline = time.monotonic() + timeout
        while on and not _ready(obj):
            if time.monotonic() > deadline:
                raise ClusterError(
                    f'node "{node}" did not report Ready within {timeout:.0f} s',
                    f"see the cluster log: {self.dir.log}",
                )
            time.sleep(0.05)
            obj = self.request(f"/api/v1/nodes/{node}")
        return obj


def _ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def list_clusters(home: Path | None = None) -> list[str]:
    """Names of the clusters that have state under the home directory."""
    return cluster_names(home)


def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").exists() or "zombie" not in Path(f"/proc/{pid}/status").read_text()


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EmbeddedBackend(ClusterBackend):
    """labkit's own cluster: started on first use, reused while it runs."""

    name = "embedded"

    def __init__(self, cluster: str = DEFAULT_NAME) -> None:
        self.cluster = EmbeddedCluster(cluster)

    def ensure_running(self) -> None:
        """Start the cluster unless it runs (the Lab's balancing and seed apply to a new start)."""
        config = settings()
        self.cluster.up(nodes=None if self.cluster.dir.exists() else EMBEDDED_NODES,
                        balancing=config.balancing, seed=config.seed)  # fmt: skip

    def describe(self) -> ClusterInfo:
        """The cluster's name, its context and its kubeconfig under ``$LABKIT_HOME``."""
        return ClusterInfo(self.cluster.name, self.cluster.dir.context, self.cluster.dir.kubeconfig)

    def image_builder(self) -> EmbeddedImageBuilder:
        """labkit's embedded builder, into the store under this cluster's ``$LABKIT_HOME``."""
        return EmbeddedImageBuilder(self.cluster.home)

    def load_image(self, tag: str) -> None:
        """Nothing to do: the kubelets read the same image store the builder writes."""

    def pod_url(self, pod: dict[str, Any], port: int) -> str | None:
        """The pod's address on loopback: embedded pods are reachable from this machine."""
        address = pod_address(pod, port)
        return f"http://{address[0]}:{address[1]}/" if address else None

    def supports_node_power(self) -> bool:
        """Embedded nodes can be powered off and on."""
        return True

    def set_node_power(self, node: str, on: bool) -> None:
        """Power a node off (its pods' containers die) or on (waits until it is Ready)."""
        self.cluster.set_node_power(node, on)
