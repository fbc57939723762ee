"""What particular kinds do on create, update and delete.

Services get a cluster IP from the cluster's Service range (127.96.0.0/16 for the first
cluster, see :mod:`labkit.embedded.addresses`), node ports from 30000-32767 and (LoadBalancers)
an ingress address from its LoadBalancer range (127.100.0.0/16); new pods start Pending
with their QoS class; namespaces are deleted in two steps (Terminating, then gone once their
contents are); the system namespaces cannot be deleted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from typing import TYPE_CHECKING, Any, Protocol

from labkit.embedded import addresses
from labkit.embedded.apiserver.status import ApiError, Cause, invalid
from labkit.embedded.resources import RESOURCES, ResourceType, lookup

if TYPE_CHECKING:
    from labkit.embedded.store import Store


class RegistryView(Protocol):
    """What the hooks need of the registry that calls them (so hooks.py does not import it back)."""

    store: Store

    def list(self, rt: ResourceType, namespace: str | None) -> tuple[list[dict[str, Any]], int]:
        """The objects of one kind (in one namespace, or all) and the list's resourceVersion."""
        ...

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: dict[str, Any] | None = None,
        *, dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:  # fmt: skip
        """Delete an object; the object and whether it is gone already."""
        ...

    def finish_deletion(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        """Remove an object whose finalizers are done."""
        ...


NODE_PORT_RANGE = range(30000, 32768)
PROTECTED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
SERVICES = lookup("", "v1", "services")


class Hooks:
    """Kind-specific steps of the registry's create, update and delete."""

    def __init__(self, registry: RegistryView) -> None:
        self.registry = registry
        self.random = random.Random()

    # -- create and update ---------------------------------------------------------------

    def before_create(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Reset or initialise status and allocate what the kind needs."""
        if "status" in rt.subresources and rt.kind not in ("Node", "Namespace"):
            obj["status"] = {}
        if rt.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec", {}))}
        elif rt.kind == "ReplicaSet":
            obj["status"] = {"replicas": 0}  # the one status field without omitempty
        elif rt.kind == "Service":
            self._allocate(obj, None)

    def before_update(self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Keep what was allocated; allocate what a changed Service newly needs."""
        if rt.kind == "Service":
            self._allocate(new, old)

    # -- services ------------------------------------------------------------------------

    def _services(self, skip: dict[str, Any] | None) -> list[dict[str, Any]]:
        assert SERVICES is not None
        items, _ = self.registry.list(SERVICES, None)
        uid = (skip or {}).get("metadata", {}).get("uid")
        return [s for s in items if s["metadata"].get("uid") != uid]

    def _allocate(self, svc: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = svc.setdefault("spec", {})
        others = self._services(old)
        name = svc["metadata"].get("name", "")
        causes: list[Cause] = []
        self._allocate_ip(spec, (old or {}).get("spec", {}), others, causes)
        self._allocate_node_ports(spec, (old or {}).get("spec", {}), others, causes)
        if causes:
            assert SERVICES is not None
            raise invalid(SERVICES, name, causes)
        self._load_balancer_status(svc)

    @staticmethod
    def _load_balancer_status(svc: dict[str, Any]) -> None:
        """A LoadBalancer gets its loopback ingress address at once (never ``<pending>``);
        a Service that stops being one loses it."""
        spec = svc["spec"]
        status = svc.get("status")
        if not isinstance(status, dict):
            status = svc["status"] = {}
        if spec.get("type") == "LoadBalancer" and spec.get("clusterIP") not in (None, "", "None"):
            status["loadBalancer"] = {"ingress": [{"ip": ingress_ip(spec["clusterIP"]), "ipMode": "VIP"}]}
        elif (status.get("loadBalancer") or {}).get("ingress"):
            status["loadBalancer"] = {}

    def _allocate_ip(
        self, spec: dict[str, Any], old: dict[str, Any], others: list[dict[str, Any]], causes: list[Cause]
    ) -> None:
        if spec.get("type") == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
            return
        wanted = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if old.get("clusterIP"):
            if wanted and wanted != old["clusterIP"]:
                causes.append(
                    Cause("spec.clusterIPs[0]", f'Invalid value: ["{wanted}"]: may not change once set')
                )
                return
            wanted = old["clusterIP"]
        elif wanted and wanted != "None":
            try:
                ip = ipaddress.ip_address(wanted)
            except ValueError:
                causes.append(
                    Cause("spec.clusterIPs[0]", f'Invalid value: "{wanted}": must be a valid IP address')
                )
                return
            service_range = addresses.current().service_range
            if ip not in service_range:
                causes.append(
                    Cause(
                        "spec.clusterIPs",
                        f'Invalid value: ["{wanted}"]: failed to allocate IP '
                        f"{wanted}: provided IP is not in the valid range. The range of valid IPs "
                        f"is {service_range}",
                    )
                )
                return
            if any(s["spec"].get("clusterIP") == wanted for s in others):
                causes.append(
                    Cause(
                        "spec.clusterIPs",
                        f'Invalid value: ["{wanted}"]: failed to allocate IP '
                        f"{wanted}: provided IP is already allocated",
                    )
                )
                return
        elif not wanted:
            used = {s["spec"].get("clusterIP") for s in others}
            wanted = self._free_ip(used)
        spec["clusterIP"] = wanted
        spec["clusterIPs"] = [wanted]

    def _free_ip(self, used: set[str | None]) -> str:
        block = addresses.current()
        service_range = block.service_range
        hosts = service_range.num_addresses - 2
        for _ in range(1000):
            candidate = str(service_range.network_address + self.random.randint(10, hosts))
            if candidate not in used:
                return candidate
        for address in service_range.hosts():
            if str(address) not in used and str(address) != block.kubernetes_ip:
                return str(address)
        raise ApiError(500, f"no cluster IP is free in {service_range}", "InternalError")

    def _allocate_node_ports(
        self, spec: dict[str, Any], old: dict[str, Any], others: list[dict[str, Any]], causes: list[Cause]
    ) -> None:
        ports = spec.get("ports") or []
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            for port in ports:
                port.pop("nodePort", None)
            return
        taken = {p.get("nodePort") for s in others for p in s["spec"].get("ports") or []}
        previous = {p.get("port"): p.get("nodePort") for p in old.get("ports") or [] if p.get("nodePort")}
        for i, port in enumerate(ports):
            wanted = port.get("nodePort") or previous.get(port.get("port"))
            if wanted:
                if wanted not in NODE_PORT_RANGE:
                    causes.append(
                        Cause(
                            f"spec.ports[{i}].nodePort",
                            f"Invalid value: {wanted}: provided port is "
                            f"not in the valid range. The range of valid ports is 30000-32767",
                        )
                    )
                elif wanted in taken:
                    causes.append(
                        Cause(
                            f"spec.ports[{i}].nodePort",
                            f"Invalid value: {wanted}: provided port is already allocated",
                        )
                    )
                port["nodePort"] = wanted
            else:
                free = [p for p in NODE_PORT_RANGE if p not in taken]
                if not free:
                    causes.append(Cause(f"spec.ports[{i}].nodePort", "Internal error: no node port is free"))
                    continue
                port["nodePort"] = self.random.choice(free)
            taken.add(port["nodePort"])

    # -- delete --------------------------------------------------------------------------

    def before_delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Refuse to delete the system namespaces."""
        name = obj["metadata"]["name"]
        if rt.kind == "Namespace" and name in PROTECTED_NAMESPACES:
            raise ApiError(
                403,
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                "Forbidden",
                {"name": name, "kind": "namespaces"},
            )

    def grace_period(self, rt: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> int:
        """Seconds a deleted object gets to shut down: a pod bound to a node gets its
        terminationGracePeriodSeconds (or the request's); everything else, and a pod never
        scheduled, goes at once (0)."""
        if rt.kind != "Pod" or not obj.get("spec", {}).get("nodeName"):
            return 0
        if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        requested = options.get("gracePeriodSeconds")
        if requested is not None:
            try:
                return max(int(requested), 0)
            except (TypeError, ValueError):
                raise ApiError(
                    400, f'gracePeriodSeconds must be a number of seconds, not "{requested}"', "BadRequest"
                ) from None
        return int(obj["spec"].get("terminationGracePeriodSeconds", 30))

    def delete_later(self, rt: ResourceType, obj: dict[str, Any], options: dict[str, Any]) -> bool:
        """Namespaces go Terminating first and are removed once empty."""
        if rt.kind != "Namespace":
            return False
        if not obj["metadata"].get("deletionTimestamp"):
            obj.setdefault("status", {})["phase"] = "Terminating"
            try:
                asyncio.get_running_loop().create_task(self._empty_namespace(rt, obj["metadata"]["name"]))
            except RuntimeError:  # no event loop (a script using the registry directly)
                asyncio.run(self._empty_namespace(rt, obj["metadata"]["name"]))
        return True

    async def _empty_namespace(self, ns_type: ResourceType, namespace: str) -> None:
        await asyncio.sleep(0)  # let the Terminating update land first
        store = self.registry.store
        while True:
            left = [
                (rt, o["metadata"]["name"])
                for rt in RESOURCES
                if rt.namespaced
                for o in store.list(rt.key, namespace)[0]
            ]
            for rt, name in left:
                current = store.find(rt.key, namespace, name)
                if current is not None and not current["metadata"].get("deletionTimestamp"):
                    try:
                        self.registry.delete(rt, namespace, name)
                    except ApiError:
                        pass
            if not left:
                break
            await asyncio.sleep(0.1)
        self.registry.finish_deletion(ns_type, None, namespace)


def ingress_ip(cluster_ip: str) -> str:
    """A LoadBalancer's ingress address: its cluster IP moved from the Service range to the
    LoadBalancer range (unique because cluster IPs are)."""
    block = addresses.current()
    offset = int(ipaddress.ip_address(cluster_ip)) - int(block.service_range.network_address)
    lb = block.load_balancer_range
    return str(lb.network_address + offset % lb.num_addresses)


def qos_class(spec: dict[str, Any]) -> str:
    """BestEffort, Burstable or Guaranteed, from the containers' requests and limits."""
    containers = [*spec.get("containers", []), *spec.get("initContainers", [])]
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    for req, lim in zip(requests, limits, strict=True):
        for resource in ("cpu", "memory"):
            if resource not in lim or req.get(resource, lim[resource]) != lim[resource]:
                return "Burstable"
    return "Guaranteed"
