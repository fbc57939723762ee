"""Validation of objects on create, update and patch, with kube-apiserver's messages.

Three steps, in the order the API server runs them:

* :func:`check_fields` is decoding: unknown fields (the ``fieldValidation`` query
  parameter decides between a 400, ``Warning`` headers or nothing) and values the
  typed decoder cannot read (bad quantities, bad base64 in a Secret), always a 400.
  Known fields come from the official ``kubernetes`` client's models, imported on
  first use because the import costs about a quarter of a second.
* :func:`validate` is ``pkg/apis/*/validation``: it collects every problem and raises
  one 422 Invalid whose causes carry upstream's field paths, reasons and messages.

Messages follow k8s.io/apimachinery ``util/validation`` and ``util/validation/field``
(v1.32): ``Required value``, ``Invalid value: "x": <why>``, ``Unsupported value: "x":
supported values: "A", "B"`` and so on.

The modules: ``names`` (name and value rules), ``quantity``, ``base64_errors`` and ``fields``
(decoding); ``errors`` (the error list), ``coerce`` (reading decoded JSON), ``metadata``,
``pods``, ``containers``, ``ports``, ``workloads``, ``services`` and ``config`` (one kind each).
"""

from __future__ import annotations

from collections.abc import Callable

from labkit.embedded.apiserver.status import invalid
from labkit.embedded.apiserver.validation.base64_errors import base64_error
from labkit.embedded.apiserver.validation.coerce import Obj, as_dict
from labkit.embedded.apiserver.validation.config import MAX_SECRET_SIZE, validate_configmap, validate_secret
from labkit.embedded.apiserver.validation.endpoints import validate_endpoint_slice, validate_endpoints
from labkit.embedded.apiserver.validation.errors import Errors
from labkit.embedded.apiserver.validation.fields import (
    MAX_STRICT_ERRORS,
    check_fields,
    unknown_fields,
    warm_up,
)
from labkit.embedded.apiserver.validation.metadata import TOTAL_ANNOTATION_SIZE, validate_object_meta
from labkit.embedded.apiserver.validation.names import (
    config_key,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    env_var_name,
    label_value,
    port_name,
    port_number,
    qualified_name,
)
from labkit.embedded.apiserver.validation.pods import UPDATABLE_POD_FIELDS, validate_pod
from labkit.embedded.apiserver.validation.quantity import QUANTITY_FORMAT_ERROR, Quantity, parse_quantity
from labkit.embedded.apiserver.validation.services import MAX_CLIENT_IP_TIMEOUT, validate_service
from labkit.embedded.apiserver.validation.workloads import validate_deployment, validate_replicaset
from labkit.embedded.resources import ResourceType

__all__ = [
    "MAX_CLIENT_IP_TIMEOUT",
    "MAX_SECRET_SIZE",
    "MAX_STRICT_ERRORS",
    "QUANTITY_FORMAT_ERROR",
    "TOTAL_ANNOTATION_SIZE",
    "UPDATABLE_POD_FIELDS",
    "Obj",
    "Quantity",
    "base64_error",
    "check_fields",
    "config_key",
    "dns1035_label",
    "dns1123_label",
    "dns1123_subdomain",
    "env_var_name",
    "label_value",
    "parse_quantity",
    "port_name",
    "port_number",
    "qualified_name",
    "unknown_fields",
    "validate",
    "warm_up",
]

_NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "Namespace": dns1123_label,
    "Service": dns1035_label,
}
_KIND_RULES: dict[str, Callable[[Errors, Obj, Obj | None], None]] = {
    "Pod": validate_pod,
    "Deployment": validate_deployment,
    "ReplicaSet": validate_replicaset,
    "Service": validate_service,
    "ConfigMap": validate_configmap,
    "Secret": validate_secret,
    "Endpoints": validate_endpoints,
    "EndpointSlice": validate_endpoint_slice,
}


def validate(rt: ResourceType, obj: Obj, *, old: Obj | None = None) -> None:
    """Raise 422 Invalid listing every problem in ``obj`` (``old`` is the stored object on update)."""
    errs = Errors()
    meta = as_dict(obj.get("metadata"))
    validate_object_meta(errs, meta, _NAME_RULES.get(rt.kind, dns1123_subdomain), rt.namespaced)
    rule = _KIND_RULES.get(rt.kind)
    if rule is not None:
        rule(errs, obj, old)
    if errs.causes:
        raise invalid(rt, str(meta.get("name") or meta.get("generateName") or ""), errs.causes)
