"""Service traffic: routing a connection or a request of a Service to one ready endpoint.

:class:`ServiceRouter` is the one entry point every path shares: the Service listeners of
:mod:`.listeners` (one pick per connection, like kube-proxy), the API server's service proxy
(one random pick per request, like kube-apiserver) and the in-cluster HTTP proxy. Each path
asks for a :class:`Route`, connects to ``route.endpoint.address`` and keeps the
:class:`~.records.Record` that :meth:`ServiceRouter.record` returns up to date::

    route = router.route("default", "web", 80, client_ip="127.0.0.1", mode="random")
    rec = router.record(route, client="127.0.0.1:50412", via="apiserver-proxy")
    if route.endpoint is None:
        raise no_endpoints(route.service)          # 503, as kube-apiserver says it
    ...                                            # connect to route.endpoint.address
    rec.bytes_out += len(body); rec.finish(status=200)   # or rec.finish(CONNECT_FAILED)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkit.embedded.apiserver.status import ApiError, not_found
from labkit.embedded.kubeproxy.balancer import (
    CLIENT_IP,
    MODES,
    RANDOM,
    ROUND_ROBIN,
    Balancer,
    Endpoint,
    Policy,
)
from labkit.embedded.kubeproxy.records import (
    CONNECT_FAILED,
    NO_ENDPOINTS,
    OK,
    RING_SIZE,
    VIAS,
    Record,
    RecordLog,
)
from labkit.embedded.kubeproxy.table import BALANCING_ANNOTATION, SEED_ANNOTATION, ServiceTable, ServiceView
from labkit.embedded.resources import lookup
from labkit.embedded.state import ClusterConfig
from labkit.embedded.store import Event, Store

__all__ = [
    "BALANCING_ANNOTATION",
    "CLIENT_IP",
    "CONNECT_FAILED",
    "MODES",
    "NO_ENDPOINTS",
    "OK",
    "RANDOM",
    "ROUND_ROBIN",
    "SEED_ANNOTATION",
    "VIAS",
    "Endpoint",
    "Policy",
    "Record",
    "Route",
    "ServiceRouter",
    "ServiceView",
    "no_endpoints",
]

SERVICES = lookup("", "v1", "services")
PINNED = "pinned"  # the mode of traffic that chose its pod itself (port-forward)


@dataclass(frozen=True)
class Route:
    """Where one connection or request of a Service goes: the Service port it asked for, the
    mode that chose, and the endpoint (None when the port has no ready endpoint)."""

    namespace: str
    service: str
    port: int
    port_name: str
    mode: str
    client_ip: str
    endpoint: Endpoint | None


def no_endpoints(service: str) -> ApiError:
    """The 503 kube-apiserver's service proxy answers when a Service has no ready endpoint."""
    return ApiError(503, f'no endpoints available for service "{service}"', "ServiceUnavailable")


class ServiceRouter:
    """Picks endpoints for every traffic path and keeps the traffic record.

    Feed it every store change through :meth:`notify` (the cluster manager does).
    """

    def __init__(
        self,
        store: Store,
        config: ClusterConfig,
        ring_size: int = RING_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = ServiceTable(store, config)
        self.balancer = Balancer(clock)
        self.log = RecordLog(ring_size)

    def notify(self, event: Event) -> None:
        """A store change (called synchronously by the store, like controllers' ``notify``)."""
        self.table.notify(event)
        if event.key == "core/services" and event.type == "DELETED":
            self.balancer.forget(event.namespace, event.obj["metadata"]["name"])

    def view(self, namespace: str, service: str) -> ServiceView | None:
        """The Service as the proxies see it (ports, endpoints, policy), or None."""
        return self.table.view(namespace, service)

    def route(
        self,
        namespace: str,
        service: str,
        port: int | str = "",
        client_ip: str = "",
        mode: str | None = None,
    ) -> Route:
        """Pick the endpoint for one connection or request to a Service port.

        ``port`` is the Service port's number or name (``""``: its unnamed or only port).
        ``mode`` (``"random"`` or ``"round-robin"``) overrides the Service's own mode and
        ignores its session affinity; None uses the Service's. A Service that does not exist
        is a 404, a port it does not have a 503 (as kube-apiserver's service proxy says);
        no ready endpoint is a Route whose ``endpoint`` is None.
        """
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown balancing mode {mode!r}: use {' or '.join(MODES)}")
        view = self.table.view(namespace, service)
        if view is None:
            assert SERVICES is not None
            raise not_found(SERVICES, service)
        chosen = view.port(port)
        if chosen is None:
            shown = f'"{port}"' if isinstance(port, str) and not port.isdigit() else str(port)
            raise ApiError(
                503, f'no service port {shown} found for service "{service}"', "ServiceUnavailable"
            )
        endpoints = view.endpoints.get(chosen.name, ())
        key = (namespace, service, chosen.name)
        endpoint, used = self.balancer.pick(key, endpoints, client_ip, view.policy, mode)
        return Route(namespace, service, chosen.port, chosen.name, used, client_ip, endpoint)

    def record(self, route: Route, client: str, via: str, outcome: str | None = None) -> Record:
        """Record one connection or request routed by ``route`` (``client`` is ``ip:port``,
        ``via`` one of :data:`VIAS`); the outcome defaults to ``ok``, or ``no-endpoints`` when
        the route has no endpoint. Update the returned record as the traffic flows."""
        endpoint = route.endpoint
        return self.log.add(
            namespace=route.namespace,
            service=route.service,
            port=route.port,
            port_name=route.port_name,
            client=client,
            via=via,
            mode=route.mode,
            pod=endpoint.pod if endpoint else None,
            node=endpoint.node if endpoint else None,
            pod_ip=endpoint.ip if endpoint else None,
            endpoint=f"{endpoint.ip}:{endpoint.port}" if endpoint else None,
            outcome=outcome or (OK if endpoint else NO_ENDPOINTS),
        )

    def record_pinned(self, namespace: str, pod_ip: str, port: int, client: str, via: str) -> list[Record]:
        """Record one connection pinned to a pod (``kubectl port-forward``) for every Service
        whose ready endpoints include that pod's ``port``: the traffic that bypassed the
        balancing, mode ``pinned``."""
        out = []
        services = self.table.store.list(SERVICES.key, namespace)[0] if SERVICES is not None else []
        for svc in services:
            view = self.table.view(namespace, svc["metadata"]["name"])
            if view is None:
                continue
            for service_port in view.ports:
                endpoints = view.endpoints.get(service_port.name, ())
                endpoint = next((e for e in endpoints if e.ip == pod_ip and e.port == port), None)
                if endpoint is not None:
                    name = service_port.name
                    route = Route(namespace, view.name, service_port.port, name, PINNED, client, endpoint)
                    out.append(self.record(route, client, via))
        return out

    def records(self, namespace: str, service: str, since: float | None = None) -> list[dict[str, Any]]:
        """The Service's recorded connections and requests, oldest first (after ``since``, a
        Unix time, if given); at most the last :data:`RING_SIZE` are kept."""
        return self.log.records(namespace, service, since)

    def clear(self, namespace: str, service: str) -> None:
        """Forget the Service's records."""
        self.log.clear(namespace, service)
