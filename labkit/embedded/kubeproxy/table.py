"""What the proxies know about each Service: its ports, its ready endpoints and how it balances.

A :class:`ServiceView` is built from the stored Service, its ``Endpoints`` and the pods they
point at, and cached until one of them changes. Endpoints carry what a real cluster shows (pod
IP and target port); the view adds where the pod's process really listens
(:func:`~labkit.embedded.kubelet.network.pod_address`). An address without a pod behind it (a
hand-written Endpoints object) is used as is when it is a loopback address, and never otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labkit.embedded.kubeproxy.balancer import MODES, RANDOM, Endpoint, Policy
from labkit.embedded.state import ClusterConfig
from labkit.embedded.store import Event, Store
from labkit.shared.contract import BALANCING_ANNOTATION, SEED_ANNOTATION
from labkit.shared.podports import pod_address

DEFAULT_AFFINITY_SECONDS = 10800  # sessionAffinityConfig.clientIP.timeoutSeconds default (3 h)
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")

log = logging.getLogger("labkit.proxy")
Obj = dict[str, Any]


@dataclass(frozen=True)
class ServicePort:
    """One port of a Service."""

    name: str
    port: int
    protocol: str = "TCP"
    node_port: int | None = None


@dataclass(frozen=True)
class ServiceView:
    """A Service as the proxies see it. ``problems`` explains annotations that were ignored."""

    namespace: str
    name: str
    type: str
    cluster_ip: str | None
    ingress_ips: tuple[str, ...]
    ports: tuple[ServicePort, ...]
    policy: Policy
    endpoints: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)  # by port name
    problems: tuple[str, ...] = ()

    def port(self, wanted: int | str) -> ServicePort | None:
        """The port with this number or name; ``""`` is the unnamed port, or the only one."""
        if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
            return next((p for p in self.ports if p.port == int(wanted)), None)
        if wanted == "" and len(self.ports) == 1:
            return self.ports[0]
        return next((p for p in self.ports if p.name == wanted), None)


def is_loopback(ip: str) -> bool:
    """Whether ``ip`` is an IPv4 loopback address."""
    try:
        return ipaddress.ip_address(ip) in LOOPBACK
    except ValueError:
        return False


def _ip_order(ip: str) -> int:
    try:
        return int(ipaddress.ip_address(ip))
    except ValueError:
        return -1


class ServiceTable:
    """Builds and caches :class:`ServiceView` objects; :meth:`notify` drops stale ones."""

    def __init__(self, store: Store, config: ClusterConfig) -> None:
        self.store = store
        self.config = config
        self._views: dict[tuple[str, str], ServiceView | None] = {}

    def notify(self, event: Event) -> None:
        """A store change: forget the views it may change."""
        if event.key in ("core/services", "core/endpoints"):
            self._views.pop((event.namespace, event.obj["metadata"]["name"]), None)
        elif event.key == "core/pods":
            for key in [k for k in self._views if k[0] == event.namespace]:
                del self._views[key]

    def view(self, namespace: str, name: str) -> ServiceView | None:
        """The Service as the proxies see it, or None if there is no such Service."""
        key = (namespace, name)
        if key not in self._views:
            svc = self.store.find("core/services", namespace, name)
            self._views[key] = None if svc is None else self._build(svc)
        return self._views[key]

    def _build(self, svc: Obj) -> ServiceView:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        namespace, name = meta.get("namespace", ""), meta["name"]
        policy, problems = self.policy(svc)
        ports = tuple(
            ServicePort(
                str(p.get("name") or ""), int(p["port"]), p.get("protocol") or "TCP", p.get("nodePort")
            )
            for p in spec.get("ports") or []
            if p.get("port")
        )
        ingress = tuple(
            i["ip"]
            for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if is_loopback(i.get("ip") or "")
        )
        cluster_ip = spec.get("clusterIP")
        endpoints = self.store.find("core/endpoints", namespace, name)
        return ServiceView(
            namespace,
            name,
            spec.get("type") or "ClusterIP",
            cluster_ip if cluster_ip and cluster_ip != "None" else None,
            ingress,
            ports,
            policy,
            self._endpoints(namespace, endpoints, bool(spec.get("publishNotReadyAddresses")))
            if endpoints
            else {},
            tuple(problems),
        )

    def policy(self, svc: Obj) -> tuple[Policy, list[str]]:
        """The Service's balancing policy and what was wrong with its annotations."""
        annotations = svc["metadata"].get("annotations") or {}
        problems = []
        mode = self.config.balancing if self.config.balancing in MODES else RANDOM
        wanted = annotations.get(BALANCING_ANNOTATION)
        if wanted is not None:
            if wanted in MODES:
                mode = wanted
            else:
                problems.append(
                    f'invalid value "{wanted}" for annotation {BALANCING_ANNOTATION}: '
                    f"use {' or '.join(MODES)}; balancing {mode} instead"
                )
        seed = self.config.seed
        text = annotations.get(SEED_ANNOTATION)
        if text is not None:
            try:
                seed = int(text)
            except ValueError:
                problems.append(
                    f'invalid value "{text}" for annotation {SEED_ANNOTATION}: must be an integer'
                )
        spec = svc.get("spec") or {}
        timeout: float | None = None
        if spec.get("sessionAffinity") == "ClientIP":
            config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
            timeout = float(config or DEFAULT_AFFINITY_SECONDS)
        return Policy(mode, timeout, seed), problems

    def _endpoints(self, namespace: str, obj: Obj, keep_terminating: bool) -> dict[str, tuple[Endpoint, ...]]:
        found: dict[str, list[Endpoint]] = {}
        for subset in obj.get("subsets") or []:
            for port in subset.get("ports") or []:
                chosen = found.setdefault(str(port.get("name") or ""), [])
                for address in subset.get("addresses") or []:
                    endpoint = self._endpoint(namespace, address, int(port["port"]), keep_terminating)
                    if endpoint is not None:
                        chosen.append(endpoint)
        return {
            name: tuple(sorted(eps, key=lambda e: (_ip_order(e.ip), e.port))) for name, eps in found.items()
        }

    def _endpoint(self, namespace: str, address: Obj, port: int, keep_terminating: bool) -> Endpoint | None:
        """The endpoint of one address; None for a pod that is gone, or terminating (the
        Endpoints drop it a moment later: this closes that window), or a foreign address."""
        ip = address.get("ip") or ""
        ref = address.get("targetRef") or {}
        node = address.get("nodeName")
        if ref.get("kind") == "Pod" and ref.get("name"):
            pod = self.store.find("core/pods", ref.get("namespace") or namespace, ref["name"])
            if pod is None or (pod["metadata"].get("deletionTimestamp") and not keep_terminating):
                return None
            real = pod_address(pod, port)
            if real is None:
                return None
            return Endpoint(ip, port, real[0], real[1], ref["name"], node or pod["spec"].get("nodeName"))
        if not is_loopback(ip):
            log.debug("endpoint %s:%d is outside loopback; not used", ip, port)
            return None
        return Endpoint(ip, port, ip, port, None, node)
