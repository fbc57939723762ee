"""The endpoints controller: keeps each Service's Endpoints and EndpointSlices in step with its pods.

As upstream's ``pkg/controller/endpoint`` and ``endpointslice``: for a Service with a selector,
every matching pod that has an IP and has not finished is an endpoint. ``Endpoints`` list ready
pods under ``addresses`` and the others under ``notReadyAddresses`` (terminating pods are left
out); EndpointSlices keep terminating pods too, with ``ready``/``serving``/``terminating``
conditions. ``publishNotReadyAddresses`` makes every such pod ready. A named targetPort is
resolved per pod from its containerPorts; a pod without that port is no endpoint of it.
Services without a selector are left to whoever writes their Endpoints, except the
``kubernetes`` Service, whose endpoint is the API server itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers import workloads as wl
from labkit.embedded.controllers.base import Controller, Key
from labkit.embedded.resources import ResourceType, lookup
from labkit.embedded.store import Event
from labkit.shared import timeutil

Obj = dict[str, Any]


def _type(group: str, plural: str) -> ResourceType:
    rt = lookup(group, "v1", plural)
    assert rt is not None
    return rt


SERVICES = _type("", "services")
PODS = _type("", "pods")
ENDPOINTS = _type("", "endpoints")
SLICES = _type("discovery.k8s.io", "endpointslices")
COMPONENT = "endpoint-controller"
MANAGER = "kube-controller-manager"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
MAX_SLICE_ENDPOINTS = 100  # upstream's --max-endpoints-per-slice default


class EndpointsController(Controller):
    """Writes Endpoints and EndpointSlices for every Service with a selector."""

    name = COMPONENT
    watches = ("core/services", "core/pods", "core/endpoints", SLICES.key)

    def __init__(self, ctx: ClusterContext) -> None:
        super().__init__(ctx)
        self._members: dict[Key, set[str]] = {}  # service → names of the pods it last listed

    def keys_for(self, event: Event) -> Iterable[Key]:
        """A pod concerns the Services that select it now or listed it before; an Endpoints
        object or one of our slices concerns its Service."""
        if event.key == PODS.key:
            return self._services_of_pod(event.obj)
        if event.key == SLICES.key:
            labels = event.obj["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) != SLICE_CONTROLLER or not labels.get(SERVICE_NAME_LABEL):
                return []
            return [(event.namespace, labels[SERVICE_NAME_LABEL])]
        return super().keys_for(event)

    def _services_of_pod(self, pod: Obj) -> list[Key]:
        namespace, name = pod["metadata"].get("namespace", ""), pod["metadata"]["name"]
        labels = pod["metadata"].get("labels") or {}
        services, _ = self.ctx.store.list(SERVICES.key, namespace)
        keys = [
            (namespace, svc["metadata"]["name"])
            for svc in services
            if _selector(svc) and all(labels.get(k) == v for k, v in _selector(svc).items())
        ]
        keys.extend(k for k, pods in self._members.items() if k[0] == namespace and name in pods)
        return keys

    async def reconcile(self, key: Key) -> float | None:
        """Bring the Service's Endpoints and slices to what its pods say."""
        namespace, name = key
        svc = self.ctx.store.find(SERVICES.key, namespace, name)
        if svc is None:
            self._members.pop(key, None)
            if self.ctx.store.find(ENDPOINTS.key, namespace, name) is not None:
                _ignore_missing(lambda: self.ctx.registry.delete(ENDPOINTS, namespace, name))
            return None  # the garbage collector removes the slices, which the Service owns
        if key == ("default", "kubernetes"):
            self._write_endpoints(svc, self._apiserver_subsets())
            return None
        selector = _selector(svc)
        if not selector or svc["spec"].get("type") == "ExternalName":
            return None
        candidates, _ = self.ctx.store.list(PODS.key, namespace)
        pods = [
            p
            for p in candidates
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        self._members[key] = {p["metadata"]["name"] for p in pods}
        self._write_endpoints(svc, endpoint_subsets(svc, pods))
        self._write_slices(svc, slice_groups(svc, pods))
        return None

    # -- Endpoints -----------------------------------------------------------------------

    def _apiserver_subsets(self) -> list[Obj]:
        port = self.ctx.config.port
        if not port:
            return []
        return [
            {
                "addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            }
        ]

    def _write_endpoints(self, svc: Obj, subsets: list[Obj]) -> None:
        meta = svc["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        labels = _labels(svc)
        current = self.ctx.store.find(ENDPOINTS.key, namespace, name)
        if current is None:
            body: Obj = {"metadata": {"name": name, "labels": labels, "annotations": _trigger()}}
            if subsets:
                body["subsets"] = subsets
            self.ctx.registry.create(ENDPOINTS, namespace, body, manager=MANAGER)
            return
        if (current.get("subsets") or []) == subsets and (current["metadata"].get("labels") or {}) == labels:
            return

        def change(ep: Obj) -> None:
            ep["metadata"]["labels"] = labels
            ep["metadata"].setdefault("annotations", {}).update(_trigger())
            if subsets:
                ep["subsets"] = subsets
            else:
                ep.pop("subsets", None)

        self.ctx.registry.mutate(ENDPOINTS, namespace, name, change, manager=MANAGER)

    # -- EndpointSlices ------------------------------------------------------------------

    def _write_slices(self, svc: Obj, groups: list[tuple[list[Obj], list[Obj]]]) -> None:
        meta = svc["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        items, _ = self.ctx.store.list(SLICES.key, namespace)
        existing = [
            s
            for s in items
            if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
            and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == SLICE_CONTROLLER
            and not s["metadata"].get("deletionTimestamp")
        ]
        labels = {**_labels(svc), SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: SLICE_CONTROLLER}
        for ports, endpoints in groups:
            match = next((s for s in existing if (s.get("ports") or []) == ports), None)
            if match is None:
                self._create_slice(svc, labels, ports, endpoints)
                continue
            existing.remove(match)
            if match.get("endpoints") != endpoints or (match["metadata"].get("labels") or {}) != labels:
                self._update_slice(match, labels, endpoints)
        for stale in existing:
            _ignore_missing(
                lambda s=stale: self.ctx.registry.delete(SLICES, namespace, s["metadata"]["name"])
            )

    def _create_slice(self, svc: Obj, labels: dict[str, str], ports: list[Obj], endpoints: list[Obj]) -> None:
        meta = svc["metadata"]
        body = {
            "metadata": {
                "generateName": f"{meta['name']}-",
                "labels": labels,
                "annotations": _trigger(),
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Service",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        }
        self.ctx.registry.create(SLICES, meta["namespace"], body, manager=MANAGER)

    def _update_slice(self, current: Obj, labels: dict[str, str], endpoints: list[Obj]) -> None:
        def change(s: Obj) -> None:
            s["metadata"]["labels"] = labels
            s["metadata"].setdefault("annotations", {}).update(_trigger())
            s["endpoints"] = endpoints

        meta = current["metadata"]
        self.ctx.registry.mutate(SLICES, meta["namespace"], meta["name"], change, manager=MANAGER)


# -- what the pods say -----------------------------------------------------------------------


def _selector(svc: Obj) -> dict[str, str]:
    selector = svc.get("spec", {}).get("selector")
    return selector if isinstance(selector, dict) else {}


def _labels(svc: Obj) -> dict[str, str]:
    """The Service's labels, with the headless mark for ``clusterIP: None``."""
    labels = {
        k: v
        for k, v in (svc["metadata"].get("labels") or {}).items()
        if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
    }
    if svc["spec"].get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def _trigger() -> dict[str, str]:
    return {TRIGGER_ANNOTATION: timeutil.rfc3339()}


def _ignore_missing(action: Any) -> None:
    try:
        action()
    except ApiError as e:
        if e.code != 404:
            raise


def belongs(pod: Obj, include_terminating: bool) -> bool:
    """Whether a pod is an endpoint at all (upstream's ``ShouldPodBeInEndpoints``): it has an
    IP, has not finished, and is not terminating unless those are included."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not status.get("podIP"):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for a Service port (upstream's ``FindPort``): a number as is, a name
    looked up among the containers' ports of the same protocol; None if no container has it."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for container in pod.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def _pod_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The endpoint ports of one pod, in the Service's port order."""
    ports = []
    for service_port in svc["spec"].get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("name"):
            port = {"name": service_port["name"], **port}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def _target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}


def _address(svc: Obj, pod: Obj) -> Obj:
    address: Obj = {"ip": pod["status"]["podIP"]}
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        address["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    address["targetRef"] = _target_ref(pod)
    return address


def _ip_order(ip: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ip.split(".")) if ip.count(".") == 3 else (256,)


def endpoint_subsets(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """The ``subsets`` of the Service's Endpoints: pods grouped by the ports they offer, ready
    ones under ``addresses`` and the rest under ``notReadyAddresses``, sorted by IP."""
    tolerate = bool(svc["spec"].get("publishNotReadyAddresses"))
    headless_without_ports = not svc["spec"].get("ports") and svc["spec"].get("clusterIP") == "None"
    groups: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not belongs(pod, tolerate):
            continue
        ports = _pod_ports(svc, pod)
        if not ports and not headless_without_ports:
            continue
        ready, not_ready, _ = groups.setdefault(repr(ports), ([], [], ports))
        (ready if tolerate or wl.is_ready(pod) else not_ready).append(_address(svc, pod))
    subsets = []
    for key in sorted(groups):
        ready, not_ready, ports = groups[key]
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: _ip_order(a["ip"]))
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: _ip_order(a["ip"]))
        if ports:
            subset["ports"] = ports
        subsets.append(subset)
    return subsets


def _slice_endpoint(svc: Obj, pod: Obj) -> Obj:
    serving = wl.is_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    ready = bool(svc["spec"].get("publishNotReadyAddresses")) or (serving and not terminating)
    endpoint: Obj = {
        "addresses": [pod["status"]["podIP"]],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
    }
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        endpoint["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        endpoint["nodeName"] = spec["nodeName"]
    endpoint["targetRef"] = _target_ref(pod)
    return endpoint


def slice_groups(svc: Obj, pods: list[Obj]) -> list[tuple[list[Obj], list[Obj]]]:
    """The slices the Service should have, as (ports, endpoints): one per set of ports, at
    most :data:`MAX_SLICE_ENDPOINTS` endpoints each; a placeholder without either when no
    pod is an endpoint."""
    by_ports: dict[str, tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not belongs(pod, include_terminating=True):
            continue
        ports = [
            {"name": p.get("name", ""), **{k: v for k, v in p.items() if k != "name"}}
            for p in _pod_ports(svc, pod)
        ]
        if not ports and svc["spec"].get("ports"):
            continue
        by_ports.setdefault(repr(ports), (ports, []))[1].append(_slice_endpoint(svc, pod))
    groups: list[tuple[list[Obj], list[Obj]]] = []
    for key in sorted(by_ports):
        ports, endpoints = by_ports[key]
        endpoints.sort(key=lambda e: _ip_order(e["addresses"][0]))
        for start in range(0, len(endpoints), MAX_SLICE_ENDPOINTS):
            groups.append((ports, endpoints[start : start + MAX_SLICE_ENDPOINTS]))
    return groups or [([], [])]
