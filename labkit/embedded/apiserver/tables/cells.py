"""Building blocks of every table: column definitions and the cell formats kinds share."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from labkit.embedded.apiserver.metav1_selector import selector_to_string
from labkit.embedded.apiserver.selector_errors import SelectorError
from labkit.shared import timeutil

Cells = list[Any]
Printer = Callable[[dict[str, Any], datetime], Cells]

NONE = "<none>"


def column(name: str, description: str, kind: str = "string", *, wide: bool = False) -> dict[str, Any]:
    """A ``TableColumnDefinition``; ``wide`` ones (priority 1) only show with ``-o wide``."""
    return {
        "name": name,
        "type": kind,
        "format": "name" if name == "Name" else "",
        "description": description,
        "priority": 1 if wide else 0,
    }


NAME = column("Name", "Name of the object, unique within its namespace.")
AGE = column("Age", "Time since the object was created (metadata.creationTimestamp).")
TEMPLATE_COLUMNS = [
    column("Containers", "Names of each container in the template.", wide=True),
    column("Images", "Images referenced by each container in the template.", wide=True),
    column("Selector", "Label selector for the pods this object manages.", wide=True),
]


def metadata_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata, ``{}`` when it has none."""
    return obj.get("metadata") or {}


def name_age(obj: dict[str, Any], now: datetime) -> tuple[str, str]:
    """The Name and Age cells every kind starts (or ends) with."""
    meta = metadata_of(obj)
    return meta.get("name", ""), timeutil.age(meta.get("creationTimestamp"), now)


def labels_text(labels: dict[str, str] | None) -> str:
    """A label map as ``a=1,b=2`` (sorted), ``<none>`` when empty: upstream ``labels.FormatLabels``."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or NONE


def template_cells(obj: dict[str, Any]) -> tuple[str, str]:
    """The Containers and Images cells of an object with a pod template."""
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def selector_text(selector: dict[str, Any] | None, empty: str) -> str:
    """A label selector as kubectl prints it, ``empty`` when it selects everything."""
    try:
        return selector_to_string(selector) or empty
    except SelectorError:
        return "<invalid>"


def list_with_more(items: list[str], limit: int = 3, empty: str = "<unset>") -> str:
    """The first ``limit`` items, then `` + N more...``, as upstream lists endpoints."""
    text = ",".join(items[:limit])
    if len(items) > limit:
        return f"{text} + {len(items) - limit} more..."
    return text or empty
