"""An upstream ``field.ErrorList``, and bad values printed the way Go prints them.

Messages follow k8s.io/apimachinery ``util/validation/field`` (v1.32): ``Required value``,
``Invalid value: "x": <why>``, ``Unsupported value: "x": supported values: "A", "B"`` and so on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from labkit.embedded.apiserver.status import Cause


class Raw(str):
    """A value already rendered the way Go prints it (``%#v`` of a struct, a map)."""


def _go(value: Any) -> str:
    """A bad value as ``field.Error`` prints it: strings quoted, numbers and booleans bare."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def go_map(labels: Any) -> Raw:
    """``%#v`` of a map[string]string: keys sorted, ``(nil)`` when absent."""
    if not isinstance(labels, dict):
        return Raw("map[string]string(nil)")
    inner = ", ".join(f"{json.dumps(k)}:{json.dumps(str(v))}" for k, v in sorted(labels.items()))
    return Raw(f"map[string]string{{{inner}}}")


def go_selector(selector: Any) -> Raw:
    """The generated ``String()`` of a metav1.LabelSelector."""
    selector = selector if isinstance(selector, dict) else {}
    labels = selector.get("matchLabels") or {}
    shown = "".join(f"{k}: {v}," for k, v in sorted(labels.items()))
    exprs = "".join(
        f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
        f"Values:[{' '.join(map(str, e.get('values') or []))}],}},"
        for e in selector.get("matchExpressions") or []
        if isinstance(e, dict)
    )
    return Raw(
        f"&LabelSelector{{MatchLabels:map[string]string{{{shown}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )


def go_int_or_string(value: Any) -> Raw:
    """IntOrString through its ``String()``: the number or the text, unquoted."""
    return Raw(str(value))


class Errors:
    """An ErrorList: causes in the order found, duplicates dropped as upstream's aggregate does."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def _add(self, path: str, message: str, reason: str) -> None:
        cause = Cause(path, message, reason)
        if cause not in self.causes:
            self.causes.append(cause)

    def required(self, path: str, detail: str = "") -> None:
        """``Required value``, with an optional detail."""
        self._add(path, "Required value" + (f": {detail}" if detail else ""), "FieldValueRequired")

    def invalid(self, path: str, value: Any, detail: str) -> None:
        """``Invalid value: <value>: <detail>``."""
        self._add(path, f"Invalid value: {_go(value)}: {detail}", "FieldValueInvalid")

    def invalid_each(self, path: str, value: Any, messages: Iterable[str]) -> None:
        """One ``Invalid value`` per message (a rule's list of problems)."""
        for msg in messages:
            self.invalid(path, value, msg)

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        """``Unsupported value``, listing the supported ones."""
        choices = ", ".join(json.dumps(s) for s in supported)
        self._add(
            path, f"Unsupported value: {_go(value)}: supported values: {choices}", "FieldValueNotSupported"
        )

    def duplicate(self, path: str, value: Any) -> None:
        """``Duplicate value``."""
        self._add(path, f"Duplicate value: {_go(value)}", "FieldValueDuplicate")

    def forbidden(self, path: str, detail: str) -> None:
        """``Forbidden: <detail>``."""
        self._add(path, f"Forbidden: {detail}", "FieldValueForbidden")

    def not_found(self, path: str, value: Any) -> None:
        """``Not found``."""
        self._add(path, f"Not found: {_go(value)}", "FieldValueNotFound")

    def too_long(self, path: str, limit: int) -> None:
        """``Too long``: more than ``limit`` bytes."""
        self._add(path, f"Too long: must have at most {limit} bytes", "FieldValueTooLong")

    def nonnegative(self, path: str, value: Any) -> None:
        """``Invalid value`` when ``value`` is a negative number."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")
