"""The node agent: one per node, running the pods bound to it.

It reports its node Ready and renews the node's Lease while it runs; it starts a pod's
containers as soon as the binding is stored, and writes pod status as the containers change.
Stopping it is a power cut (everything killed at once, nothing reported: the node controller
notices the silence); shutting it down stops every container gracefully for a daemon that is
going away. When it starts again it takes over the pods bound to its node and runs them again,
after killing whatever a killed daemon left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from labkit.embedded import addresses
from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.kubelet.backoff import Backoff
from labkit.embedded.kubelet.filesystem import Sandbox, make_sandbox
from labkit.embedded.kubelet.network import IpPool, PoolExhaustedError
from labkit.embedded.kubelet.pod import PodWorker
from labkit.embedded.kubelet.process import ProcessRuntime
from labkit.embedded.kubelet.simulated import SimulatedPods, wants_simulation
from labkit.embedded.names import ClusterNames
from labkit.embedded.nodes import ready_conditions
from labkit.embedded.podlogs import remove_pod
from labkit.embedded.resources import lookup
from labkit.embedded.runnable_images import ImageStore
from labkit.embedded.store import DELETED, Event
from labkit.sandbox.isolation import IsolationError
from labkit.sandbox.native import NativeToolsError
from labkit.shared.contract import ISOLATION_ANNOTATION

NODES = lookup("", "v1", "nodes")
PODS = lookup("", "v1", "pods")
LEASES = lookup("coordination.k8s.io", "v1", "leases")
assert NODES is not None and PODS is not None and LEASES is not None
LEASE_NAMESPACE = "kube-node-lease"
SHUTDOWN_GRACE = 2.0  # seconds a stopping daemon gives containers after SIGTERM
log = logging.getLogger("labkit.kubelet")


def micro_time() -> str:
    """Now as a ``metav1.MicroTime``: ``2026-11-25T08:01:17.123456Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _node_condition(node: dict[str, Any] | None, kind: str) -> str:
    for condition in (node or {}).get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return ""


class Kubelet:
    """Runs the pods bound to one node, with the process or the simulated runtime."""

    def __init__(self, ctx: ClusterContext, node: str, images: ImageStore) -> None:
        self.ctx = ctx
        self.node = node
        self.images = images
        self._sandbox: Sandbox | Exception | None = None
        sandbox = self.sandbox()
        isolated = isinstance(sandbox, Sandbox)
        self.runtime = ProcessRuntime(
            ctx.state.pods_dir / f".{node}.processes.json",
            sandbox.isolation if isolated else None,
            sandbox.launcher if isolated else None,
        )
        self.names = ClusterNames(ctx.store)  # the manager gives every kubelet the cluster's own
        self.crash_backoff = Backoff(ctx.config.backoff_base, ctx.config.backoff_max)
        self.pull_backoff = Backoff(ctx.config.backoff_base, ctx.config.backoff_max)
        self.pool = IpPool(addresses.current().pod_cidr(0))
        self.host_ip = ""
        self.workers: dict[str, PodWorker] = {}
        self.simulated = SimulatedPods(self)
        self.running = False
        self.http_proxy: Callable[[str], str] | None = None  # namespace → the cluster's HTTP proxy URL
        self._lease_task: asyncio.Task[None] | None = None

    def sandbox(self) -> Sandbox | Exception:
        """How containers are isolated here, or why they cannot be (what to install)."""
        if self._sandbox is None:
            try:
                self._sandbox = make_sandbox(self.ctx.state.path.parent.parent / "cache")
            except (IsolationError, NativeToolsError) as e:
                self._sandbox = e
        return self._sandbox

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Report the node Ready, keep its Lease fresh, and run every pod bound to it."""
        node = self.ctx.store.find(NODES.key, "", self.node)
        if node is None:
            raise LookupError(f'node "{self.node}" not found')
        self.pool = IpPool(str(node.get("spec", {}).get("podCIDR") or addresses.current().pod_cidr(0)))
        listed = node.get("status", {}).get("addresses") or []
        self.host_ip = next((a["address"] for a in listed if a.get("type") == "InternalIP"), "127.0.0.1")
        killed = self.runtime.kill_leftovers()
        if killed:
            log.info("%s: killed %d processes left from a previous run", self.node, killed)
        was_ready = _node_condition(node, "Ready") == "True"
        updated = self._post_ready()
        if not was_ready:
            self.ctx.event(updated, "kubelet", "Normal", "Starting", "Starting kubelet.", host=self.node)
            self.ctx.event(
                updated,
                "kubelet",
                "Normal",
                "NodeReady",
                f"Node {self.node} status is now: NodeReady",
                host=self.node,
            )
        self._renew_lease()
        self.running = True
        self._lease_task = asyncio.get_running_loop().create_task(
            self._heartbeat(), name=f"lease {self.node}"
        )
        self._take_over()

    def _take_over(self) -> None:
        pods = [p for p in self.ctx.store.list(PODS.key)[0] if p.get("spec", {}).get("nodeName") == self.node]
        for pod in pods:  # keep every address in use before handing out new ones
            ip = (pod.get("status") or {}).get("podIP")
            if ip and self.pool.contains(ip):
                self.pool.take(ip)
        for pod in pods:
            ip = (pod.get("status") or {}).get("podIP")
            if ip:
                self.pool.release(ip)
            self._admit(pod)

    async def stop(self) -> None:
        """Power the node off: heartbeats stop, every container is killed at once, and nothing
        more is reported."""
        self.running = False
        await self._stop_heartbeat()
        workers = list(self.workers.values())
        for worker in workers:
            worker.halt()
        self.runtime.kill_all()
        await self._settle(workers)
        self.simulated.clear()

    async def shutdown(self) -> None:
        """Stop every container for a daemon that is stopping: SIGTERM, a short wait, SIGKILL."""
        self.running = False
        await self._stop_heartbeat()
        workers = list(self.workers.values())
        for worker in workers:
            worker.halt()
        containers = list(self.runtime.containers.values())
        await asyncio.gather(*(self.runtime.stop(c, SHUTDOWN_GRACE) for c in containers))
        await self._settle(workers)
        self.simulated.clear()

    async def _settle(self, workers: list[PodWorker]) -> None:
        """Let the halted workers end, then forget them (their files stay for a restart)."""
        tasks = [task for w in workers for task in w.tasks()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE + 1)
            for task in pending:
                task.cancel()
        self.runtime.kill_all()
        for worker in workers:
            self.pool.release(worker.ip)
        self.workers.clear()

    async def _stop_heartbeat(self) -> None:
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
            self._lease_task = None

    # -- heartbeats ----------------------------------------------------------------------

    def _post_ready(self) -> dict[str, Any]:
        """Report the node's conditions Ready (transition times kept where nothing changed), and
        how it isolates containers (``containerRuntimeVersion``, as ``kubectl get nodes -o wide``
        shows it, and the ``labkit.dev/isolation`` annotation)."""
        sandbox = self.sandbox()
        if isinstance(sandbox, Exception):
            runtime_version, isolation = "labkit://unavailable", f"unavailable: {sandbox}"
        else:
            tool = sandbox.isolation
            runtime_version = f"labkit://{tool.tool}{'-' + tool.version if tool.version else ''}"
            isolation = tool.describe()

        def change(node: dict[str, Any]) -> None:
            status = node.setdefault("status", {})
            old = {c.get("type"): c for c in status.get("conditions") or []}
            conditions = ready_conditions(True)
            for condition in conditions:
                before = old.get(condition["type"])
                if before is not None and before.get("status") == condition["status"]:
                    condition["lastTransitionTime"] = before.get("lastTransitionTime")
            status["conditions"] = conditions
            info = status.setdefault("nodeInfo", {})
            info["containerRuntimeVersion"] = runtime_version

        def annotate(node: dict[str, Any]) -> None:
            node["metadata"].setdefault("annotations", {})[ISOLATION_ANNOTATION] = isolation

        with contextlib.suppress(ApiError):
            self.ctx.registry.mutate(NODES, None, self.node, annotate, manager="kubelet")

        return self.ctx.registry.mutate(
            NODES, None, self.node, change, subresource="status", manager="kubelet"
        )

    async def _heartbeat(self) -> None:
        interval = min(2.0, max(self.ctx.config.node_grace / 2, 0.2))
        while True:
            await asyncio.sleep(interval)
            try:
                self._renew_lease()
                self._report_status()
            except ApiError as e:
                log.warning("%s: renewing the lease failed: %s", self.node, e)

    def _report_status(self) -> None:
        """Node status updates: a running kubelet posts its node Ready again whenever it is not
        (the node controller marked it Unknown while the kubelet was silent)."""
        node = self.ctx.store.find(NODES.key, "", self.node)
        if not self.running or node is None or _node_condition(node, "Ready") == "True":
            return
        updated = self._post_ready()
        message = f"Node {self.node} status is now: NodeReady"
        self.ctx.event(updated, "kubelet", "Normal", "NodeReady", message, host=self.node)

    def _renew_lease(self) -> None:
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": micro_time()}
        if self.ctx.store.find(LEASES.key, LEASE_NAMESPACE, self.node) is None:
            self.ctx.registry.create(LEASES, LEASE_NAMESPACE, {"metadata": {"name": self.node}, "spec": spec})
            return

        def change(lease: dict[str, Any]) -> None:
            lease["spec"] = {**lease.get("spec", {}), **spec}

        self.ctx.registry.mutate(LEASES, LEASE_NAMESPACE, self.node, change, manager="kubelet")

    # -- pods ----------------------------------------------------------------------------

    def notify(self, event: Event) -> None:
        """A pod of this node changed: start, update or forget it (work is queued, not done here)."""
        try:
            self._notify(event)
        except Exception:  # a store write must never fail because of its listeners
            log.exception("%s: handling a change of pod %s failed", self.node, event.obj["metadata"]["name"])

    def _notify(self, event: Event) -> None:
        pod = event.obj
        uid = pod["metadata"].get("uid", "")
        if event.type == DELETED:
            self._forget(pod)
            return
        if not self.running or pod.get("spec", {}).get("nodeName") != self.node:
            return
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
        elif uid in self.simulated:
            self.simulated.admit(pod)
        else:
            self._admit(pod)

    def _admit(self, pod: dict[str, Any]) -> None:
        """Take on a pod this kubelet does not run yet."""
        meta = pod["metadata"]
        status = pod.get("status") or {}
        if meta.get("deletionTimestamp"):  # nothing of it runs (any leftovers were killed)
            asyncio.get_running_loop().call_soon(self._remove, pod)
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        try:
            ip = self.pool.take(status.get("podIP"))
        except PoolExhaustedError as e:
            self.ctx.event(
                pod,
                "kubelet",
                "Warning",
                "FailedCreatePodSandBox",
                f"Failed to create pod sandbox: {e}",
                host=self.node,
            )
            asyncio.get_running_loop().call_later(
                self.ctx.config.backoff_base, self._retry, meta.get("namespace"), meta["name"], meta["uid"]
            )
            return
        if wants_simulation(pod, self.ctx.config.runtime):
            self.simulated.admit(pod, ip)
            return
        worker = PodWorker(self, pod, ip)
        self.workers[meta["uid"]] = worker
        worker.update(pod)

    def _retry(self, namespace: str, name: str, uid: str) -> None:
        pod = self.ctx.store.find(PODS.key, namespace, name)
        if (
            self.running
            and pod is not None
            and pod["metadata"].get("uid") == uid
            and uid not in self.workers
            and uid not in self.simulated
        ):
            self._admit(pod)

    def _remove(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiError):
            self.ctx.registry.finish_deletion(PODS, meta.get("namespace"), meta["name"])

    def finished(self, worker: PodWorker) -> None:
        """A worker stopped its deleted pod's containers: remove the pod."""
        with contextlib.suppress(ApiError):
            self.ctx.registry.finish_deletion(PODS, worker.namespace, worker.name)

    def _forget(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta.get("uid", "")
        worker = self.workers.pop(uid, None)
        if worker is not None:
            worker.forget()
        elif uid in self.simulated:
            self.simulated.forget(uid)
        elif meta.get("namespace") and pod.get("spec", {}).get("nodeName") == self.node:
            remove_pod(self.ctx.state.pods_dir, meta["namespace"], meta["name"], uid)
