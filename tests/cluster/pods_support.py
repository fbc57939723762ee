"""Helpers for the tests of running workloads: polling, kubectl in a namespace, pods' processes."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config

from tests.conftest import Cluster

T = TypeVar("T")
POLL = 0.05  # seconds between two looks while waiting
ECHO = "labkit/echo:v1"
BUSYBOX = "busybox:1.36"  # tagged, so it is not pulled again on every restart (policy IfNotPresent)
POD_IP = re.compile(r"^127\.(24[4-9]|25[01])\.\d{1,3}\.\d{1,3}$")  # a cluster's block: 127.244-251


def wait_until(what: str, fetch: Callable[[], T], ok: Callable[[T], bool], timeout: float = 10) -> T:
    """Poll ``fetch`` until ``ok`` accepts what it returns; fails with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; last seen:\n{value!r:.3000}"
            )
        time.sleep(POLL)


@dataclass
class Kube:
    """A kubectl binary bound to a cluster and a namespace."""

    binary: str
    cluster: Cluster
    namespace: str

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl -n NAMESPACE ARGS``; fails with its output unless ``check`` is False."""
        result = subprocess.run(
            [self.binary, "-n", self.namespace, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.cluster.env(),
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def apply(self, *objects: dict[str, Any]) -> None:
        """``kubectl apply -f -`` of ``objects``."""
        self("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start ``kubectl -n NAMESPACE ARGS`` in the background, its output on a pipe."""
        return subprocess.Popen(
            [self.binary, "-n", self.namespace, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.cluster.env(),
        )

    # -- reads over raw HTTP: cheap enough to poll every 50 ms --------------------------------

    def get(self, path: str) -> Any:
        """GET a path under this namespace (``pods/web``, ``/apis/apps/v1/...``), failing unless 200."""
        if not path.startswith("/"):
            path = f"/api/v1/namespaces/{self.namespace}/{path}"
        status, body, _ = self.cluster.request("GET", path)
        assert status == 200, f"GET {path}: {status} {body!r:.500}"
        return body

    def pod(self, name: str) -> dict[str, Any]:
        """The pod ``name``."""
        return dict(self.get(f"pods/{name}"))

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        """The pods of the namespace (matching a label selector), by name."""
        query = f"?labelSelector={selector}" if selector else ""
        return sorted(self.get(f"pods{query}")["items"], key=lambda p: p["metadata"]["name"])

    def deployment(self, name: str) -> dict[str, Any]:
        """The Deployment ``name``."""
        return dict(self.get(f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}"))

    def events(self, name: str) -> list[dict[str, Any]]:
        """The events about the object ``name``, oldest first."""
        items = self.get(f"events?fieldSelector=involvedObject.name%3D{name}")["items"]
        return sorted(items, key=lambda e: e["metadata"]["name"])


def app_pod(name: str, image: str = ECHO, restart_policy: str = "Always", **container: Any) -> dict[str, Any]:
    """A Pod with one container, ``app``, of ``image`` (``container`` adds fields to it)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "app", "image": image, **container}],
        },
    }


def echo_deployment(
    name: str, replicas: int = 2, strategy: dict[str, Any] | None = None, **container: Any
) -> dict[str, Any]:
    """A Deployment of ``labkit/echo`` (container ``echo``), its pods labelled ``app=<name>``."""
    labels = {"app": name}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "terminationGracePeriodSeconds": 2,
                "containers": [{"name": "echo", "image": ECHO, **container}],
            },
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def status_of(pod: dict[str, Any], container: str | None = None) -> dict[str, Any]:
    """The status of a container of ``pod`` (its first one if no name is given); {} before any."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    for s in statuses:
        if container is None or s["name"] == container:
            return dict(s)
    return {}


def condition(pod: dict[str, Any], kind: str) -> str:
    """The status ("True", "False", ...) of a pod's condition, "" when it has none."""
    for c in pod.get("status", {}).get("conditions") or []:
        if c["type"] == kind:
            return str(c["status"])
    return ""


def running_and_ready(pod: dict[str, Any]) -> bool:
    """Whether ``pod`` is Running, Ready and not being deleted."""
    return (
        pod.get("status", {}).get("phase") == "Running"
        and condition(pod, "Ready") == "True"
        and not pod["metadata"].get("deletionTimestamp")
    )


def waiting_reason(pod: dict[str, Any]) -> str:
    """The waiting reason of the pod's first container, "" if it is not waiting."""
    return str((status_of(pod).get("state", {}).get("waiting") or {}).get("reason", ""))


def real_port(pod: dict[str, Any]) -> tuple[str, int]:
    """Where the pod's first container listens: its pod IP and its first containerPort (the
    app's own port, as in a real cluster)."""
    ports = pod["spec"]["containers"][0].get("ports") or [{"containerPort": 8080}]
    return str(pod["status"]["podIP"]), int(ports[0]["containerPort"])


def _host_port(address: int | tuple[str, int]) -> tuple[str, int]:
    return ("127.0.0.1", address) if isinstance(address, int) else address


def http(address: int | tuple[str, int], path: str = "/", method: str = "GET") -> tuple[int, Any]:
    """An HTTP request to a local address: (status, parsed JSON body)."""
    host, port = _host_port(address)
    request = urllib.request.Request(
        f"http://{host}:{port}{path}", method=method, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_serving(address: int | tuple[str, int], timeout: float = 5) -> None:
    """Wait until something accepts connections on a local address (a pod without a readiness
    probe is Ready as soon as its process starts, before the app listens, as upstream)."""
    host, port = _host_port(address)

    def connects() -> bool:
        with socket.socket() as s:
            return s.connect_ex((host, port)) == 0

    wait_until(f"a listener on {host}:{port}", connects, bool, timeout)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def pod_processes(cluster: Cluster) -> dict[int, dict[str, str]]:
    """Every live process of a pod of ``cluster`` (pid → environment): those that have a ``POD_IP``
    and whose ``HOME`` lies in the cluster's state directory, so other clusters' pods do not count."""
    found: dict[int, dict[str, str]] = {}
    home = str(cluster.home) + os.sep
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            raw = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
        ours = env.get("HOME", "").startswith(home) or env.get("LABKIT_CLUSTER", "").startswith(home)
        if "POD_IP" in env and ours and state != "Z" and not _isolation_tool(entry):
            found[int(entry.name)] = env
    return found


def _isolation_tool(entry: Path) -> bool:
    """Whether the process is the sandbox's own (bubblewrap, PRoot, the launcher), not the app's."""
    try:
        argv0 = (entry / "cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return True
    return os.path.basename(argv0).decode(errors="replace") in ("bwrap", "proot", "launcher") or (
        b"launcher-" in argv0
    )


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def pids_of(cluster: Cluster, pod: str) -> set[int]:
    """The live processes of the pod named ``pod`` (found by their ``HOSTNAME``)."""
    return {pid for pid, env in pod_processes(cluster).items() if env.get("HOSTNAME") == pod}


def api_client(cluster: Cluster) -> client.ApiClient:
    """A Python client configured from the cluster's kubeconfig."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def one_pid(cluster: Cluster, pod: str, timeout: float = 10) -> int:
    """The app process of a one-container pod, once it runs (a pod without a readiness probe is
    Ready when its container starts, a moment before the sandbox execs the app)."""
    (pid,) = wait_until(
        f"the process of {pod}", lambda: pids_of(cluster, pod), lambda p: len(p) == 1, timeout
    )
    return pid
