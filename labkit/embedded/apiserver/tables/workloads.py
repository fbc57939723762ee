"""Deployment and ReplicaSet rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labkit.embedded.apiserver.tables.cells import (
    AGE,
    NAME,
    NONE,
    TEMPLATE_COLUMNS,
    Cells,
    column,
    name_age,
    selector_text,
    template_cells,
)

DEPLOYMENT_COLUMNS = [
    NAME,
    column("Ready", "Ready pods out of desired pods."),
    column("Up-to-date", "Pods running the latest pod template."),
    column("Available", "Pods ready for at least minReadySeconds."),
    AGE,
    *TEMPLATE_COLUMNS,
]


def deployment_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A Deployment row: ready/desired, up-to-date, available, and the template cells."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name, age = name_age(obj, now)
    ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"
    names, images = template_cells(obj)
    selector = selector_text(spec.get("selector"), "")
    counts = [status.get("updatedReplicas", 0), status.get("availableReplicas", 0)]
    return [name, ready, *counts, age, names, images, selector]


REPLICASET_COLUMNS = [
    NAME,
    column("Desired", "Number of pods wanted.", "integer"),
    column("Current", "Number of pods that exist.", "integer"),
    column("Ready", "Number of pods that are ready.", "integer"),
    AGE,
    *TEMPLATE_COLUMNS,
]


def replicaset_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A ReplicaSet row: desired, current and ready pods, and the template cells."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name, age = name_age(obj, now)
    names, images = template_cells(obj)
    counts = [spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0)]
    return [name, *counts, age, names, images, selector_text(spec.get("selector"), NONE)]
