"""``meta.k8s.io/v1`` Table responses, the form ``kubectl get`` asks for.

Columns and cell values follow kubernetes ``pkg/printers/internalversion/printers.go``. Like
kube-apiserver, every row carries the ``-o wide`` cells too (columns with ``priority: 1``); kubectl
hides them unless asked. Cell types follow upstream exactly, including its quirks: a few columns
declared ``string`` hold integers (a Deployment's Up-to-date and Available, the Data of ConfigMaps
and Secrets, an Event's Count), which kubectl prints the same either way.

The printers live one module per family of kinds (``pods``, ``workloads``, ``network``,
``cluster``, ``config``) over the shared ``cells``; this module picks one and builds the Table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labkit.embedded.apiserver.status import bad_request
from labkit.embedded.apiserver.tables.cells import AGE, NAME, Cells, Printer, metadata_of, name_age
from labkit.embedded.apiserver.tables.cluster import (
    EVENT_COLUMNS,
    NAMESPACE_COLUMNS,
    NODE_COLUMNS,
    event_cells,
    namespace_cells,
    node_cells,
)
from labkit.embedded.apiserver.tables.config import (
    CONFIGMAP_COLUMNS,
    LEASE_COLUMNS,
    SECRET_COLUMNS,
    SERVICEACCOUNT_COLUMNS,
    configmap_cells,
    lease_cells,
    secret_cells,
    serviceaccount_cells,
)
from labkit.embedded.apiserver.tables.network import (
    ENDPOINTS_COLUMNS,
    ENDPOINTSLICE_COLUMNS,
    SERVICE_COLUMNS,
    endpoints_cells,
    endpointslice_cells,
    service_cells,
)
from labkit.embedded.apiserver.tables.pods import POD_COLUMNS, pod_cells, pod_conditions
from labkit.embedded.apiserver.tables.workloads import (
    DEPLOYMENT_COLUMNS,
    REPLICASET_COLUMNS,
    deployment_cells,
    replicaset_cells,
)
from labkit.embedded.resources import ResourceType
from labkit.shared import timeutil

__all__ = ["INCLUDE_OBJECT", "to_table"]

INCLUDE_OBJECT = ("Metadata", "Object", "None")

_DEFAULT_COLUMNS = [NAME, AGE]


def _default(obj: dict[str, Any], now: datetime) -> Cells:
    return list(name_age(obj, now))


_PRINTERS: dict[str, tuple[list[dict[str, Any]], Printer]] = {
    "core/pods": (POD_COLUMNS, pod_cells),
    "apps/deployments": (DEPLOYMENT_COLUMNS, deployment_cells),
    "apps/replicasets": (REPLICASET_COLUMNS, replicaset_cells),
    "core/services": (SERVICE_COLUMNS, service_cells),
    "core/endpoints": (ENDPOINTS_COLUMNS, endpoints_cells),
    "discovery.k8s.io/endpointslices": (ENDPOINTSLICE_COLUMNS, endpointslice_cells),
    "core/nodes": (NODE_COLUMNS, node_cells),
    "core/namespaces": (NAMESPACE_COLUMNS, namespace_cells),
    "core/events": (EVENT_COLUMNS, event_cells),
    "core/configmaps": (CONFIGMAP_COLUMNS, configmap_cells),
    "core/secrets": (SECRET_COLUMNS, secret_cells),
    "core/serviceaccounts": (SERVICEACCOUNT_COLUMNS, serviceaccount_cells),
    "coordination.k8s.io/leases": (LEASE_COLUMNS, lease_cells),
}


def _row_object(rt: ResourceType, obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return {"kind": rt.kind, "apiVersion": rt.api_version, **obj}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata_of(obj)}


def to_table(
    rt: ResourceType,
    objects: list[dict[str, Any]],
    *,
    resource_version: str,
    include_object: str = "Metadata",
    now: datetime | None = None,
    column_definitions: bool = True,
) -> dict[str, Any]:
    """The ``Table`` for ``objects`` of type ``rt``, as kube-apiserver answers ``Accept: ...;as=Table``.

    ``include_object`` is the ``includeObject`` query value: ``Metadata`` (also ``""``) puts a
    ``PartialObjectMetadata`` with the full metadata in each row (``-A`` and ``--show-labels`` read
    it), ``Object`` the whole object (``--sort-by``), ``None`` a null. Any other value raises a 400
    ``ApiError``. ``column_definitions=False`` leaves ``columnDefinitions`` empty, as for watch events
    after the first. ``now`` fixes the reference time of the Age-like cells.
    """
    include_object = include_object or "Metadata"
    if include_object not in INCLUDE_OBJECT:
        raise bad_request(
            f'unrecognized includeObject value: "{include_object}" (supported: {", ".join(INCLUDE_OBJECT)})'
        )
    now = now or timeutil.now()
    definitions, printer = _PRINTERS.get(rt.key, (_DEFAULT_COLUMNS, _default))
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer(obj, now), "object": _row_object(rt, obj, include_object)}
        if rt.key == "core/pods" and (conditions := pod_conditions(obj)):
            row["conditions"] = conditions
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [dict(c) for c in definitions] if column_definitions else [],
        "rows": rows,
    }
