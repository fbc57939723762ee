"""Field selectors (``?fieldSelector=spec.nodeName=n1,status.phase!=Failed``), parsed and matched.

:func:`parse_field_selector` gives a predicate over whole objects, :func:`field_value` the string
it compares, :func:`field_paths` the labels a selector names (which labels a kind supports is
:mod:`~labkit.embedded.apiserver.fieldlabels`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from labkit.embedded.apiserver.selector_errors import SelectorError

_FIELD_OPERATORS = ("!=", "==", "=")
_BOOLEAN_FIELDS = frozenset({"spec.unschedulable", "spec.hostNetwork"})


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not escaped with a backslash (escapes are kept for unescaping)."""
    terms, start, escaped = [], 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Split at the leftmost operator: ``(field, op, raw value)``."""
    for i in range(len(term)):
        for op in _FIELD_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {char}")
        else:
            out.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string a field selector compares for dotted ``path`` in ``obj``.

    Missing fields are ``""`` (``"false"`` for the boolean fields ``spec.unschedulable`` and
    ``spec.hostNetwork``); booleans print ``true``/``false`` and numbers in decimal. ``source``
    on an Event is ``source.component``, else ``reportingComponent``, as upstream.
    """
    if path == "source":
        return field_value(obj, "source.component") or field_value(obj, "reportingComponent")
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, (int, float, str)):
        return str(node)
    return "false" if path in _BOOLEAN_FIELDS else ""


def field_paths(text: str) -> list[str]:
    """The field labels a ``fieldSelector`` names (its terms that parse), for checking support."""
    return [split[0].strip() for part in _split_terms(text) if part and (split := _split_term(part))]


def parse_field_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """Parse a ``fieldSelector`` query value into a predicate over whole objects.

    Terms are ``path=value``, ``path==value`` or ``path!=value`` joined by commas (AND); the term
    splits at its leftmost operator; ``\\,``, ``\\=`` and ``\\\\`` escape those characters in values.
    Paths are dotted object paths (``metadata.name``, ``spec.nodeName``, ``status.phase``,
    ``involvedObject.uid``, ``type``, ``reason``, ``source``, ...) read by :func:`field_value`.
    Unlike kube-apiserver, any path is accepted (no per-resource list of supported field labels)
    and whitespace around a path is ignored. The empty string selects everything.
    """
    terms: list[tuple[str, bool, str]] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, raw = split
        if not path.strip():
            raise SelectorError(f"field label not supported: \"{path}\" (in '{part}')")
        terms.append((path.strip(), op == "!=", _unescape(raw)))

    def matches(obj: dict[str, Any]) -> bool:
        return all(
            field_value(obj, path) != value if negated else field_value(obj, path) == value
            for path, negated, value in terms
        )

    return matches
