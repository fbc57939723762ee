"""Configuration and coordination objects' rows: ConfigMaps, Secrets, ServiceAccounts and Leases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labkit.embedded.apiserver.tables.cells import AGE, NAME, Cells, column, name_age

CONFIGMAP_COLUMNS = [NAME, column("Data", "Number of data keys."), AGE]
SECRET_COLUMNS = [
    NAME,
    column("Type", "The secret's type."),
    column("Data", "Number of data keys."),
    AGE,
]
SERVICEACCOUNT_COLUMNS = [NAME, column("Secrets", "Number of secrets."), AGE]
LEASE_COLUMNS = [NAME, column("Holder", "The current holder of the lease."), AGE]


def configmap_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A ConfigMap row: the number of keys in ``data`` and ``binaryData``."""
    name, age = name_age(obj, now)
    return [name, len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age]


def secret_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A Secret row: its type and number of data keys."""
    name, age = name_age(obj, now)
    return [name, obj.get("type", ""), len(obj.get("data") or {}), age]


def serviceaccount_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A ServiceAccount row: the number of secrets."""
    name, age = name_age(obj, now)
    return [name, len(obj.get("secrets") or []), age]


def lease_cells(obj: dict[str, Any], now: datetime) -> Cells:
    """A Lease row: its current holder."""
    name, age = name_age(obj, now)
    return [name, (obj.get("spec") or {}).get("holderIdentity") or "", age]
