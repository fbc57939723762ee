"""The Lab: everything a notebook does with images and a cluster, as plain Python.

A :class:`Lab` is one cluster target (a backend of :mod:`labkit.clusters`), its image builder,
a namespace and the record of what the notebook made. ``labkit.connect()`` (:mod:`labkit.kernel`)
returns the kernel's one Lab. The magics only parse their arguments and call these methods, so
anything a magic does, Python can do too. The Lab is a facade: the work is done in
:mod:`labkit.kube`, :mod:`labkit.images` and the backends.

Defaults (namespace, wait timeout, balancing, seed) come from :func:`labkit.config.settings`,
which ``%config Lab.<option>`` changes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.clusters.base import ClusterBackend
from labkit.config import settings
from labkit.kube import listing, nodes, workloads
from labkit.kube.apply import Applied, Manifest, delete_all, diff_all, manifest_text, parse_manifests
from labkit.kube.http import Api
from labkit.kube.kubectl import run_kubectl
from labkit.kube.models import LabStatus, RunResult
from labkit.kube.tracking import Record, session_id
from labkit.kube.wait import (
    parse_target,
    refuse_pending_load_balancer,
    wait_applied,
    wait_ready,
    warn_pending_load_balancers,
)

if TYPE_CHECKING:
    import pandas as pd

    from labkit.images.builders import ImageBuilder
    from labkit.images.models import BuildResult, BuildStep
    from labkit.kube.client import KubeClient
    from labkit.kube.exec import ExecResult
    from labkit.kube.portforward import PortForward
    from labkit.kube.traffic import TrafficResult
    from labkit.widgets.pods_per_node import PodsPerNode
    from labkit.widgets.request_distribution import RequestDistribution

Progress = Callable[[str], None]


class Lab:
    """One cluster target, a namespace, and the record of what this notebook made (for :meth:`reset`)."""

    def __init__(self, backend: ClusterBackend, namespace: str | None = None, *, session: str | None = None):
        backend.ensure_running()
        info = backend.describe()
        self.backend = backend
        self.images: ImageBuilder = backend.image_builder()
        self.target: str = backend.name
        self.cluster: str = info.cluster
        self.context: str = info.context
        self.kubeconfig: Path = info.kubeconfig
        self.namespace: str = namespace or settings().namespace
        self.made = Record(session or session_id())

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
        return self.kube.http()

    # -- where ------------------------------------------------------------------------------

    def status(self) -> LabStatus:
        """The target, cluster, context, API server, node names, namespace, builder and runtime."""
        names, runtime = listing.runtime(self.api)
        return LabStatus(self.target, self.cluster, self.context, self.kube.server, names,
                         self.namespace, self.images.name, runtime)  # fmt: skip

    def use(self, namespace: str) -> None:
        """Work in ``namespace`` from now on; it is created if absent (and :meth:`reset` deletes it)."""
        self.made.ensure_namespace(self.api, namespace)
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
        self.backend.check_tag(tag)
        where = Path(context).expanduser() if context is not None else None
        result = self.images.build(dockerfile, tag, where, build_args=build_args, no_cache=no_cache,
                                   progress=progress)  # fmt: skip
        self.backend.load_image(tag)
        return result

    def run(self, tag: str, *, port: int | None = None) -> RunResult:
        """Run an image once for a quick check (a container with Docker, a pod on the embedded
        cluster), with ``PORT`` set when ``port`` is given; ``.url``, ``.logs()``, ``.stop()``."""
        running = self.images.run_once(tag, port=port)
        if running is not None:
            return RunResult(tag, running.name, running.url if port else None, running.logs, running.stop)
        pod = workloads.run_pod(tag, port)
        name = pod["metadata"]["name"]
        self.apply_objects([pod], wait=True)
        url = None
        if port is not None:
            _, live = self.api.request("GET", f"/api/v1/namespaces/{self.namespace}/pods/{name}")
            url = self.backend.pod_url(live or {}, port)
            if url is not None:
                workloads.wait_answering(url, name, settings().timeout)
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
        parsed = parse_manifests(manifest_text(manifests))
        return self._apply(parsed, namespace, wait, timeout, progress, on_applied)

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
        done = self.made.apply(self.api, manifests, ns)
        if not self.backend.has_load_balancer:
            warn_pending_load_balancers([stored for _, stored in done], self.target)
        if on_applied is not None:
            on_applied([applied for applied, _ in done])
        if not wait:
            return [applied for applied, _ in done]
        return wait_applied(self.api, done, ns, timeout=timeout or settings().timeout,
                            has_load_balancer=self.backend.has_load_balancer, progress=progress)  # fmt: skip

    def delete(
        self, manifests: str | Path, *, namespace: str | None = None, wait: bool = True
    ) -> list[Applied]:
        """Delete every document's object; with ``wait``, until they are gone."""
        parsed = parse_manifests(manifest_text(manifests))
        ns = namespace or self.namespace
        deleted = delete_all(self.api, parsed, ns, wait=wait, timeout=settings().timeout)
        for manifest, applied in zip(parsed, deleted, strict=True):
            self.made.discard(manifest, applied.namespace)
        return deleted

    def diff(self, manifests: str | Path, *, namespace: str | None = None) -> str:
        """What applying would change, as a unified diff of live and merged objects ("" if nothing)."""
        parsed = [self.made.stamp(m) for m in parse_manifests(manifest_text(manifests))]
        return diff_all(self.api, parsed, namespace or self.namespace)

    def reset(self) -> list[str]:
        """Delete everything this notebook made, by this Lab or before a kernel restart (found by
        its labels), newest first; returns their names."""
        return self.made.reset(self.api, self.namespace, settings().timeout)

    def wait_ready(
        self, what: str, *, timeout: float | None = None, progress: Progress | None = None
    ) -> None:
        """Wait until ``what`` ("deployment/web", "pod/x", "service/web") is ready; the timeout
        error names the unready pods and why."""
        kind, name = parse_target(what)
        if kind == "Service" and not self.backend.has_load_balancer:
            refuse_pending_load_balancer(self.api, self.namespace, name, self.target)
        wait_ready(self.api, kind, name, self.namespace, timeout=timeout or settings().timeout,
                   progress=progress)  # fmt: skip

    # -- looking ------------------------------------------------------------------------------------

    def pods(self) -> pd.DataFrame:
        """The namespace's pods: name, ready, status, restarts, node, ip, age."""
        return listing.pods(self.api, self.namespace).frame()

    def nodes(self) -> pd.DataFrame:
        """The nodes: name, status, roles, and how many of the namespace's pods each runs."""
        return listing.nodes(self.api, self.namespace).frame()

    def services(self) -> pd.DataFrame:
        """The namespace's Services: name, type, cluster_ip, ports, endpoints (ready addresses)."""
        return listing.services(self.api, self.namespace).frame()

    def events(self) -> pd.DataFrame:
        """The namespace's events, oldest first: last_seen, type, reason, object, message."""
        return listing.events(self.api, self.namespace).frame()

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

        return exec_in(self.kube, self.namespace, pod, command, container=container, stdin=stdin,
                       timeout=timeout or settings().timeout)  # fmt: skip

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
        """Send ``n`` requests to a Service and see which pod and node served each: a result that
        reads as a DataFrame (``len``, ``.head()``, indexing) with ``.summary()`` per pod."""
        from labkit.kube.traffic import traffic

        return traffic(self.kube, service, n, namespace=self.namespace, via=via, keep_alive=keep_alive,
                       mode=mode)  # fmt: skip

    # -- pictures (widgets) -----------------------------------------------------------------------

    def pods_per_node(self, namespace: str | None = None, selector: str | None = None) -> PodsPerNode:
        """A live picture: a box per node, a tile per pod (of ``namespace``, default this Lab's),
        with buttons to delete a pod, stop, start or cordon a node, and scale a Deployment."""
        from labkit.lab.pictures import pods_per_node

        return pods_per_node(self, namespace, selector)

    def request_distribution(
        self, service: str, n: int = 100, *, mode: str | None = None, via: str = "auto", wait: bool = False
    ) -> RequestDistribution:
        """A live bar per replica of ``service`` while ``n`` requests go; pick another balancing
        (random, round-robin, pinned, keep-alive) and send again to compare. ``.data``: the rows."""
        from labkit.lab.pictures import request_distribution

        return request_distribution(self, service, n, mode, via, wait)

    # -- changing ----------------------------------------------------------------------------------

    def scale(self, deployment: str, replicas: int) -> None:
        """Set a Deployment's replicas (``"web"`` or ``"deployment/web"``)."""
        workloads.scale(self.api, self.namespace, deployment, replicas)

    def kill(self, pod: str) -> None:
        """Delete a pod at once (no grace period), as a crash would end it; its owner replaces it."""
        workloads.kill(self.api, self.namespace, pod)

    def stop_node(self, name: str) -> None:
        """Power a node off: its kubelet stops and its containers die (embedded cluster only)."""
        self.backend.set_node_power(name, False)

    def start_node(self, name: str) -> None:
        """Power a node on again; returns once it is Ready (embedded cluster only)."""
        self.backend.set_node_power(name, True)

    def cordon(self, node: str) -> None:
        """Mark a node unschedulable: new pods go elsewhere, running ones stay."""
        nodes.set_unschedulable(self.api, node, True)

    def uncordon(self, node: str) -> None:
        """Let the scheduler use a node again."""
        nodes.set_unschedulable(self.api, node, False)

    def drain(self, node: str) -> None:
        """Cordon a node and evict its pods (not DaemonSet or mirror pods); returns once they are gone."""
        nodes.drain(self.api, node, settings().timeout)

    def kubectl(self, args: str | list[str]) -> str:
        """Run kubectl against this Lab's cluster and namespace (whatever the user's kubeconfig says)
        and return what it printed; KubectlError with its stderr when it fails."""
        return run_kubectl(args, self.kubeconfig, self.context, self.namespace, settings().timeout)


__all__ = ["Lab", "LabStatus", "RunResult"]
