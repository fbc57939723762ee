"""Runs a cluster's control loops and nodes: controllers, the scheduler, the Service listeners
(:mod:`labkit.embedded.kubeproxy`) and one kubelet per node.

Every store change is handed to the controllers (which queue their own work) and, for pods
bound to a node, to that node's kubelet. A node is stopped and started through its Node
object: the annotation ``labkit.dev/power: "off"`` powers its kubelet off (its containers
die, it stops posting status, the node controller marks it NotReady and evicts its pods);
removing it (or ``"on"``) starts the kubelet again. ``labkit node stop|start`` sets it.
"""

from __future__ import annotations

import asyncio
import logging

from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.base import Controller
from labkit.embedded.controllers.deployment import DeploymentController
from labkit.embedded.controllers.endpoints import EndpointsController
from labkit.embedded.controllers.gc import GarbageCollector
from labkit.embedded.controllers.nodelifecycle import NodeLifecycleController
from labkit.embedded.controllers.replicaset import ReplicaSetController
from labkit.embedded.controllers.serviceaccounts import ServiceAccountsController
from labkit.embedded.kubelet import Kubelet
from labkit.embedded.kubeproxy.listeners import ServiceListeners
from labkit.embedded.kubeproxy.router import ServiceRouter
from labkit.embedded.names import ClusterNames
from labkit.embedded.nodes import node_names
from labkit.embedded.runnable_images import ImageStore
from labkit.embedded.scheduler import Scheduler
from labkit.embedded.store import Event
from labkit.shared.contract import POWER_ANNOTATION

log = logging.getLogger("labkit.manager")


class ClusterManager:
    """Starts, feeds and stops everything that acts on the stored objects."""

    def __init__(self, ctx: ClusterContext, images: ImageStore) -> None:
        self.ctx = ctx
        self.router = ServiceRouter(ctx.store, ctx.config)  # Service traffic: every path picks here
        self.controllers: list[Controller] = [
            DeploymentController(ctx),
            ReplicaSetController(ctx),
            Scheduler(ctx),
            GarbageCollector(ctx),
            NodeLifecycleController(ctx),
            EndpointsController(ctx),
            ServiceAccountsController(ctx),
            ServiceListeners(ctx, self.router),
        ]
        self.kubelets = {
            name: Kubelet(ctx, name, images) for name in node_names(ctx.state.name, ctx.config.nodes)
        }
        self.names = ClusterNames(ctx.store)  # the Service names in every pod's /etc/hosts
        for kubelet in self.kubelets.values():
            kubelet.names = self.names
        self._powered: dict[str, bool] = {}
        self._power_tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Start every loop and every node that is not powered off."""
        self.ctx.store.add_listener(self._dispatch)
        for controller in self.controllers:
            controller.start()
        for name, kubelet in self.kubelets.items():
            if self._wants_power(name):
                self._powered[name] = True
                await kubelet.start()
            else:
                self._powered[name] = False

    def _wants_power(self, node: str) -> bool:
        obj = self.ctx.store.find("core/nodes", "", node)
        annotations = (obj or {}).get("metadata", {}).get("annotations") or {}
        return annotations.get(POWER_ANNOTATION, "on") != "off"

    def _dispatch(self, event: Event) -> None:
        self.router.notify(event)
        self.names.notify(event)
        for controller in self.controllers:
            controller.notify(event)
        if event.key == "core/pods":
            node = event.obj.get("spec", {}).get("nodeName", "")
            if self._powered.get(node):  # a powered-off node's kubelet sees nothing until it starts
                self.kubelets[node].notify(event)
        elif event.key == "core/nodes" and event.type != "DELETED":
            name = event.obj["metadata"]["name"]
            if name in self.kubelets and self._wants_power(name) != self._powered.get(name):
                self._schedule_power(name)

    def _schedule_power(self, name: str) -> None:
        running = self._power_tasks.get(name)
        if running is not None and not running.done():
            running.add_done_callback(lambda _t: self._schedule_power(name))
            return
        self._power_tasks[name] = asyncio.get_running_loop().create_task(self._apply_power(name))

    async def _apply_power(self, name: str) -> None:
        want = self._wants_power(name)
        if want == self._powered.get(name):
            return
        self._powered[name] = want
        kubelet = self.kubelets[name]
        log.info("node %s powered %s", name, "on" if want else "off")
        if want:
            await kubelet.start()
        else:
            await kubelet.stop()

    async def shutdown(self) -> None:
        """Stop the loops, then every node's containers (none may outlive the daemon)."""
        for controller in self.controllers:
            await controller.stop()
        for task in self._power_tasks.values():
            task.cancel()
        await asyncio.gather(*(k.shutdown() for k in self.kubelets.values()), return_exceptions=True)
