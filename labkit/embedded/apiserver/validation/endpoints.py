"""Endpoints and EndpointSlices: every address must be a pod IP of this cluster.

Upstream refuses loopback and link-local endpoint addresses, so that a Service cannot be
pointed at the node itself. The embedded cluster's pods live on loopback, so the same rule,
adapted, is: an address must lie in the cluster's pod range. Anything else would let a
Service (and the API server's service proxy) reach a program of the host, or leave loopback.
"""

from __future__ import annotations

import ipaddress

from labkit.embedded import addresses
from labkit.embedded.apiserver.validation.coerce import Obj, as_dict, as_dicts, as_list
from labkit.embedded.apiserver.validation.errors import Errors

API_SERVER = ("default", "kubernetes", "127.0.0.1")  # default/kubernetes: the API server itself


def _check(errs: Errors, path: str, value: object, api_server: bool = False) -> None:
    if not isinstance(value, str) or not value:
        errs.required(path)
        return
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        errs.invalid(path, value, "must be a valid IP address")
        return
    pods = ipaddress.ip_network(addresses.current().nets[0])
    if ip not in pods and not (api_server and value == API_SERVER[2]):
        errs.invalid(
            path,
            value,
            f"must be a pod IP of this cluster ({pods}): the embedded cluster's Services reach only "
            "its own pods, not programs of this machine or other hosts",
        )


def validate_endpoints(errs: Errors, obj: Obj, old: Obj | None) -> None:
    """Endpoints: each subset's ready and not-ready addresses."""
    meta = as_dict(obj.get("metadata"))
    api_server = (meta.get("namespace") or "default", meta.get("name")) == API_SERVER[:2]
    for i, subset in enumerate(as_dicts(obj.get("subsets"))):
        for field in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(as_dicts(subset.get(field))):
                _check(errs, f"subsets[{i}].{field}[{j}].ip", address.get("ip"), api_server)


def validate_endpoint_slice(errs: Errors, obj: Obj, old: Obj | None) -> None:
    """An EndpointSlice of IPv4 or IPv6 addresses (FQDN slices name no address to check)."""
    if as_dict(obj).get("addressType") == "FQDN":
        return
    meta = as_dict(obj.get("metadata"))
    labels = as_dict(meta.get("labels"))
    service = labels.get("kubernetes.io/service-name")
    api_server = (meta.get("namespace") or "default", service) == API_SERVER[:2]
    for i, endpoint in enumerate(as_dicts(obj.get("endpoints"))):
        for j, value in enumerate(as_list(endpoint.get("addresses"))):
            _check(errs, f"endpoints[{i}].addresses[{j}]", value, api_server)
