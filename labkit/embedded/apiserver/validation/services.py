"""Services: type, ports, session affinity and traffic policies (``ValidateService``)."""

from __future__ import annotations

import json
from typing import Any

from labkit.embedded.apiserver.validation.coerce import Obj, as_dict, as_dicts, as_int, as_list
from labkit.embedded.apiserver.validation.errors import Errors, Raw
from labkit.embedded.apiserver.validation.metadata import validate_labels
from labkit.embedded.apiserver.validation.names import dns1123_label, dns1123_subdomain, port_number
from labkit.embedded.apiserver.validation.ports import PROTOCOLS, validate_port_or_name

MAX_CLIENT_IP_TIMEOUT = 86400
_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def validate_service(errs: Errors, obj: Obj, old: Obj | None) -> None:
    """A Service: type, ports, selector, session affinity and traffic policies."""
    spec = as_dict(obj.get("spec"))
    kind = spec.get("type")
    ports = as_dicts(spec.get("ports"))
    headless = kind == "ClusterIP" and (
        spec.get("clusterIP") == "None" or as_list(spec.get("clusterIPs"))[:1] == ["None"]
    )
    if not ports and not headless and kind != "ExternalName":
        errs.required("spec.ports")
    if kind == "ExternalName":
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs.invalid_each("spec.externalName", cname, dns1123_subdomain(cname))
        else:
            errs.required("spec.externalName")
    names: set[str] = set()
    for i, port in enumerate(ports):
        _service_port(errs, port, len(ports) > 1, names, f"spec.ports[{i}]")
    validate_labels(errs, spec.get("selector"), "spec.selector")
    _session_affinity(errs, spec)
    if not kind:
        errs.required("spec.type")
    elif kind not in _SERVICE_TYPES:
        errs.not_supported("spec.type", kind, _SERVICE_TYPES)
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                errs.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
    _duplicate_ports(errs, ports)
    _traffic_policies(errs, spec)


def _service_port(errs: Errors, port: Obj, require_name: bool, names: set[str], path: str) -> None:
    name = port.get("name")
    if require_name and not name:
        errs.required(f"{path}.name")
    elif name:
        errs.invalid_each(f"{path}.name", name, dns1123_label(str(name)))
        if name in names:
            errs.duplicate(f"{path}.name", name)
        names.add(str(name))
    number = as_int(port.get("port"))
    errs.invalid_each(f"{path}.port", number, port_number(number))
    if not port.get("protocol"):
        errs.required(f"{path}.protocol")
    elif port["protocol"] not in PROTOCOLS:
        errs.not_supported(f"{path}.protocol", port["protocol"], PROTOCOLS)
    validate_port_or_name(errs, port.get("targetPort"), f"{path}.targetPort")


def _session_affinity(errs: Errors, spec: Obj) -> None:
    affinity = spec.get("sessionAffinity")
    if not affinity:
        errs.required("spec.sessionAffinity")
    elif affinity not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    elif affinity == "ClientIP":
        timeout = as_dict(as_dict(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
        path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        if timeout is None:
            errs.required(path, "when session affinity type is ClientIP")
        elif not 0 < as_int(timeout) <= MAX_CLIENT_IP_TIMEOUT:
            errs.invalid(path, timeout, f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}")
    elif spec.get("sessionAffinityConfig") is not None:
        errs.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")


def _duplicate_ports(errs: Errors, ports: list[Obj]) -> None:
    node_ports: set[tuple[Any, Any]] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        node_key = (port.get("protocol"), port.get("nodePort"))
        if port.get("nodePort"):
            if node_key in node_ports:
                errs.duplicate(f"spec.ports[{i}].nodePort", port["nodePort"])
            node_ports.add(node_key)
    for i, port in enumerate(ports):
        key = (port.get("protocol"), port.get("port"))
        if key in seen:
            errs.duplicate(
                f"spec.ports[{i}]",
                Raw(
                    f'core.ServicePort{{Name:"", Protocol:{json.dumps(key[0] or "")}, '
                    f"AppProtocol:(*string)(nil), Port:{as_int(key[1])}, "
                    f'TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, '
                    f"NodePort:0}}"
                ),
            )
        seen.add(key)


def _traffic_policies(errs: Errors, spec: Obj) -> None:
    kind = spec.get("type")
    external = kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))
    policy = spec.get("externalTrafficPolicy")
    if not external and policy:
        errs.invalid(
            "spec.externalTrafficPolicy", policy, "may only be set for externally-accessible services"
        )
    elif external and not policy:
        errs.required("spec.externalTrafficPolicy")
    elif external and policy not in ("Cluster", "Local"):
        errs.not_supported("spec.externalTrafficPolicy", policy, ("Cluster", "Local"))
    internal = spec.get("internalTrafficPolicy")
    if internal is not None and internal not in ("Cluster", "Local"):
        errs.not_supported("spec.internalTrafficPolicy", internal, ("Cluster", "Local"))
