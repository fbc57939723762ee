"""Service, Endpoints and EndpointSlice rows."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from labkit.embedded.apiserver.tables.cells import (
    AGE,
    NAME,
    NONE,
    Cells,
    column,
    labels_text,
    list_with_more,
    name_age,
)

SERVICE_COLUMNS = [
    NAME,
    column("Type", "How the service is exposed."),
    column("Cluster-IP", "The service's virtual IP inside the cluster."),
    column("External-IP", "Addresses the service is reachable at from outside."),
    column("Port(s)", "Service ports, with node ports where allocated."),
    AGE,
    column("Selector", "Labels of the pods the service routes to.", wide=True),
]

ENDPOINTS_COLUMNS = [NAME, column("Endpoints", "Ready addresses and ports."), AGE]
ENDPOINTSLICE_COLUMNS = [
    NAME,
    column("AddressType", "IPv4, IPv6 or FQDN."),
    column("Ports", "Ports of the slice."),
    column("Endpoints", "Endpoint addresses."),
    AGE,
]


def _external_ip(spec: dict[str, Any], status: dict[str, Any]) -> str:
    kind, external = spec.get("type") or "ClusterIP", spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if kind == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        balancers = sorted({i.get("ip") or i.get("hostname") for i in ingress} - {None, ""})
        return ",".join(balancers + external) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _ports(ports: list[dict[str, Any]]) -> str:
    pieces = []
    for p in ports:
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        pieces.append(f"{p.get('port', 0)}{node_port}/{p.get('protocol') or 'TCP'}")
    return ",".join(pieces) or NONE


def service_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A Service row (``printService``): type, cluster and external IPs, ports and selector."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name, age = name_age(obj, now)
    cluster_ip = ((spec.get("clusterIPs") or [None])[0] or spec.get("clusterIP")) or NONE
    return [
        name,
        spec.get("type") or "ClusterIP",
        cluster_ip,
        _external_ip(spec, status),
        _ports(spec.get("ports") or []),
        age,
        labels_text(spec.get("selector")),
    ]


def _host_port(ip: str, port: Any) -> str:
    try:
        v6 = ipaddress.ip_address(ip).version == 6
    except ValueError:
        v6 = ":" in ip
    return f"[{ip}]:{port}" if v6 else f"{ip}:{port}"


def endpoints_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """An Endpoints row: ``ip:port`` pairs, the first three then how many more."""
    name, age = name_age(obj, now)
    subsets = obj.get("subsets") or []
    items: list[str] = []
    for subset in subsets:
        ips = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        items += ips if not ports else [_host_port(ip, p.get("port", 0)) for p in ports for ip in ips]
    return [name, list_with_more(items, empty="") if subsets else NONE, age]


def endpointslice_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """An EndpointSlice row: address type, ports and addresses."""
    name, age = name_age(obj, now)
    ports = [
        str(p["port"]) if p.get("port") is not None else p.get("name") or "*" for p in obj.get("ports") or []
    ]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [name, obj.get("addressType", ""), list_with_more(ports), list_with_more(addresses), age]
