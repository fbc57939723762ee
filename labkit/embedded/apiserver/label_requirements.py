"""Label selector requirements: one ``key op values`` term, validated and matched as apimachinery's.

:func:`new_requirement` checks a term as ``labels.NewRequirement`` does (label key and value
syntax, the number of values per operator); :func:`matcher` ANDs terms into a predicate over an
object's labels. The text syntax (:mod:`~labkit.embedded.apiserver.label_parser`) and the
structured ``metav1.LabelSelector`` (:mod:`~labkit.embedded.apiserver.metav1_selector`) both
build these terms.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from labkit.embedded.apiserver.selector_errors import SelectorError

IN, NOT_IN, EQ, EQ2, NE, GT, LT = "in", "notin", "=", "==", "!=", "gt", "lt"
EXISTS, NOT_EXISTS = "exists", "!"
BINARY_OPERATORS = (IN, NOT_IN, EQ, EQ2, NE, GT, LT)

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


@dataclass(frozen=True)
class Requirement:
    """One ``key op values`` term; ``op`` is one of this module's operator names."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this term (``!=`` and ``notin`` hold when the key is absent)."""
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.op in (IN, EQ, EQ2):
            return present and value in self.values
        if self.op in (NOT_IN, NE):
            return not present or value not in self.values
        if self.op == EXISTS:
            return present
        if self.op == NOT_EXISTS:
            return not present
        return present and _compare_int(value, self.op, int(self.values[0]))

    def __str__(self) -> str:
        if self.op == EXISTS:
            return self.key
        if self.op == NOT_EXISTS:
            return f"!{self.key}"
        if self.op in (IN, NOT_IN):
            return f"{self.key} {self.op} ({','.join(sorted(self.values))})"
        symbol = {GT: ">", LT: "<"}.get(self.op, self.op)
        return f"{self.key}{symbol}{self.values[0]}"


def _compare_int(label_value: str, op: str, bound: int) -> bool:
    try:
        number = int(label_value)
    except ValueError:
        return False
    return number > bound if op == GT else number < bound


def check_key(key: str) -> None:
    """Raise unless ``key`` is a valid label key: ``[DNS-subdomain/]name``."""
    prefix, slash, name = key.rpartition("/")
    problem = ""
    if key.count("/") > 1:
        problem = f"a qualified name {_NAME_RULE}, with an optional DNS subdomain prefix and '/'"
    elif not name:
        problem = "name part must be non-empty"
    elif len(name) > 63:
        problem = "name part must be no more than 63 characters"
    elif not _NAME.match(name):
        problem = f"name part {_NAME_RULE}"
    elif slash and not prefix:
        problem = "prefix part must be non-empty"
    elif slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        problem = "prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters"
    if problem:
        raise SelectorError(f'invalid label key "{key}": {problem}')


def _check_value(key: str, value: str) -> None:
    problem = ""
    if len(value) > 63:
        problem = "must be no more than 63 characters"
    elif not _VALUE.match(value):
        problem = "a label value must be empty or " + _NAME_RULE.removeprefix("must ")
    if problem:
        raise SelectorError(f'invalid label value "{value}" for key "{key}": {problem}')


def new_requirement(key: str, op: str, values: Iterable[str]) -> Requirement:
    """Build a validated requirement, as apimachinery's ``NewRequirement`` does."""
    values = tuple(values)
    check_key(key)
    if op in (IN, NOT_IN) and not values:
        raise SelectorError(f"key {key}: for 'in', 'notin' operators, values set can't be empty")
    if op in (EQ, EQ2, NE) and len(values) != 1:
        raise SelectorError(f"key {key}: exact-match compatibility requires one single value")
    if op in (EXISTS, NOT_EXISTS) and values:
        raise SelectorError(f"key {key}: values set must be empty for exists and does not exist")
    if op in (GT, LT):
        if len(values) != 1:
            raise SelectorError(f"key {key}: for 'Gt', 'Lt' operators, exactly one value is required")
        if not re.fullmatch(r"[+-]?\d+", values[0]):
            raise SelectorError(f"key {key}: for 'Gt', 'Lt' operators, the value must be an integer")
    for value in values:
        _check_value(key, value)
    return Requirement(key, op, values)


def matcher(requirements: list[Requirement]) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over labels (``None`` as no labels) that holds when every term holds."""

    def matches(labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in requirements)

    return matches
