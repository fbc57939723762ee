"""Reading decoded JSON as Go's typed decoder would have filled the struct: a wrong type reads as empty."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def as_dict(value: Any) -> Obj:
    """An object field's value; ``{}`` when absent or not an object."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """A list field's value; ``[]`` when absent or not a list."""
    return value if isinstance(value, list) else []


def as_dicts(value: Any) -> list[Obj]:
    """A list of objects, each entry read with :func:`as_dict`."""
    return [as_dict(v) for v in as_list(value)]


def as_int(value: Any) -> int:
    """An integer field's value; 0 for what the typed decoder would not have produced."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
