"""Label and field selectors, parsed and matched the way kube-apiserver does.

* :func:`parse_label_selector` reads the ``?labelSelector=`` syntax (``app=web,tier in (a,b),!canary``)
  with the same grammar, token rules and error messages as apimachinery's ``labels.Parse``.
* :func:`parse_field_selector` reads ``?fieldSelector=`` (``spec.nodeName=n1,status.phase!=Failed``).
* :func:`label_selector_matches` and :func:`selector_to_string` work on a structured
  ``metav1.LabelSelector`` (``spec.selector`` of a Deployment or ReplicaSet).

Every syntax or validation problem raises :class:`SelectorError`; its text is what the API server
puts in the 400 BadRequest, so kubectl prints the message a real cluster would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector that cannot be parsed or is not valid."""


# ---------------------------------------------------------------------------
# Requirements: one ``key op values`` term of a label selector.

_IN, _NOT_IN, _EQ, _EQ2, _NE, _GT, _LT = "in", "notin", "=", "==", "!=", "gt", "lt"
_EXISTS, _NOT_EXISTS = "exists", "!"
_BINARY_OPERATORS = (_IN, _NOT_IN, _EQ, _EQ2, _NE, _GT, _LT)

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_RULE = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.op in (_IN, _EQ, _EQ2):
            return present and value in self.values
        if self.op in (_NOT_IN, _NE):
            return not present or value not in self.values
        if self.op == _EXISTS:
            return present
        if self.op == _NOT_EXISTS:
            return not present
        return present and _compare_int(value, self.op, int(self.values[0]))

    def __str__(self) -> str:
        if self.op == _EXISTS:
            return self.key
        if self.op == _NOT_EXISTS:
            return f"!{self.key}"
        if self.op in (_IN, _NOT_IN):
            return f"{self.key} {self.op} ({','.join(sorted(self.values))})"
        symbol = {_GT: ">", _LT: "<"}.get(self.op, self.op)
        return f"{self.key}{symbol}{self.values[0]}"


def _compare_int(label_value: str, op: str, bound: int) -> bool:
    try:
        number = int(label_value)
    except ValueError:
        return False
    return number > bound if op == _GT else number < bound


def _check_key(key: str) -> None:
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


def _requirement(key: str, op: str, values: Iterable[str]) -> _Requirement:
    """Build a validated requirement, as apimachinery's ``NewRequirement`` does."""
    values = tuple(values)
    _check_key(key)
    if op in (_IN, _NOT_IN) and not values:
        raise SelectorError(f"key {key}: for 'in', 'notin' operators, values set can't be empty")
    if op in (_EQ, _EQ2, _NE) and len(values) != 1:
        raise SelectorError(f"key {key}: exact-match compatibility requires one single value")
    if op in (_EXISTS, _NOT_EXISTS) and values:
        raise SelectorError(f"key {key}: values set must be empty for exists and does not exist")
    if op in (_GT, _LT):
        if len(values) != 1:
            raise SelectorError(f"key {key}: for 'Gt', 'Lt' operators, exactly one value is required")
        if not re.fullmatch(r"[+-]?\d+", values[0]):
            raise SelectorError(f"key {key}: for 'Gt', 'Lt' operators, the value must be an integer")
    for value in values:
        _check_value(key, value)
    return _Requirement(key, op, values)


def _matcher(requirements: list[_Requirement]) -> Callable[[Mapping[str, str]], bool]:
    def matches(labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in requirements)

    return matches


# ---------------------------------------------------------------------------
# The label selector text syntax: lexer and recursive-descent parser.

_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")
_SYMBOLS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "<": "<", "!=": "!=", "(": "("}
_KEYWORDS = {"in": _IN, "notin": _NOT_IN}
_ID, _END, _ERROR = "identifier", "end", "error"
_OPERATOR_TOKENS = {_IN: _IN, _NOT_IN: _NOT_IN, "=": _EQ, "==": _EQ2, "!=": _NE, ">": _GT, "<": _LT}


def _tokens(text: str) -> list[tuple[str, str]]:
    """Split ``text`` into (kind, literal) pairs, ending with an end-of-string token."""
    out: list[tuple[str, str]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos == len(text):
            out.append((_END, ""))
            return out
        if text[pos] in _SPECIAL:
            token, pos = _symbol(text, pos)
        else:
            start = pos
            while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
                pos += 1
            word = text[start:pos]
            token = (_KEYWORDS.get(word, _ID), word)
        out.append(token)


def _symbol(text: str, pos: int) -> tuple[tuple[str, str], int]:
    """The longest operator symbol starting at ``pos``, and the position after it."""
    best: tuple[str, str] | None = None
    end = pos
    while end < len(text) and text[end] in _SPECIAL:
        candidate = text[pos : end + 1]
        if candidate in _SYMBOLS:
            best, end = (_SYMBOLS[candidate], candidate), end + 1
        elif best is not None:
            break
        else:
            end += 1
    if best is None:
        return (_ERROR, f"error expected: keyword found '{text[pos:end]}'"), end
    return best, end


class _Parser:
    """Label selector grammar, following apimachinery's ``labels.Parser`` rule for rule."""

    def __init__(self, text: str) -> None:
        self.items = _tokens(text)
        self.pos = 0

    def peek(self, as_value: bool = True) -> tuple[str, str]:
        return self._as(self.items[self.pos], as_value)

    def take(self, as_value: bool = True) -> tuple[str, str]:
        self.pos += 1
        return self._as(self.items[self.pos - 1], as_value)

    @staticmethod
    def _as(item: tuple[str, str], as_value: bool) -> tuple[str, str]:
        # Where a value is expected, the keywords 'in' and 'notin' are plain identifiers.
        return (_ID, item[1]) if as_value and item[0] in (_IN, _NOT_IN) else item

    def parse(self) -> list[_Requirement]:
        requirements: list[_Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == _END:
                return requirements
            if kind not in (_ID, "!"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as e:
                raise SelectorError(f"unable to parse requirement: {e}") from None
            kind, literal = self.take()
            if kind == _END:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.peek()
            if kind not in (_ID, "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> _Requirement:
        key, op = self.key_and_implied_operator()
        if op in (_EXISTS, _NOT_EXISTS):
            return _requirement(key, op, ())
        op = self.operator()
        values = self.value_set() if op in (_IN, _NOT_IN) else self.exact_value()
        return _requirement(key, op, sorted(values))

    def key_and_implied_operator(self) -> tuple[str, str]:
        op = ""
        kind, literal = self.take()
        if kind == "!":
            op = _NOT_EXISTS
            kind, literal = self.take()
        if kind != _ID:
            raise SelectorError(f"found '{literal}', expected: identifier")
        _check_key(literal)
        if self.peek()[0] in (_END, ","):
            op = op or _EXISTS
        return literal, op

    def operator(self) -> str:
        kind, literal = self.take(as_value=False)
        if kind not in _OPERATOR_TOKENS:
            raise SelectorError(f"found '{literal}', expected: {', '.join(_BINARY_OPERATORS)}")
        return _OPERATOR_TOKENS[kind]

    def value_set(self) -> set[str]:
        kind, literal = self.take()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == ")":  # "()" is the set holding only the empty value
            self.take()
            return {""}
        if kind not in (_ID, ","):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        self.take()  # the ')' that identifiers() stopped at
        return values

    def identifiers(self) -> set[str]:
        """A comma-separated list where an empty place (``(a,,b)``, ``(,a)``) means the empty value."""
        values: set[str] = set()
        while True:
            kind, literal = self.take()
            if kind == _ID:
                values.add(literal)
                following, text = self.peek()
                if following == ")":
                    return values
                if following != ",":
                    raise SelectorError(f"found '{text}', expected: ',' or ')'")
            elif kind == ",":
                following = self.peek()[0]
                if not values or following in (",", ")"):
                    values.add("")
                if following == ")":
                    return values
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (_END, ","):
            return {""}
        kind, literal = self.take()
        if kind != _ID:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return {literal}


def parse_label_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """Parse a ``labelSelector`` query value into a predicate over an object's labels.

    Supports ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists),
    ``!k`` (does not exist) and ``k>1``/``k<1`` (integer compare), joined by commas (AND), with
    whitespace allowed between tokens. The empty string selects everything. ``k!=v`` and
    ``notin`` also match objects without the label, as upstream.
    """
    return _matcher(sorted(_Parser(text).parse(), key=lambda r: r.key))


# ---------------------------------------------------------------------------
# Structured metav1.LabelSelector.

_EXPRESSION_OPERATORS = {"In": _IN, "NotIn": _NOT_IN, "Exists": _EXISTS, "DoesNotExist": _NOT_EXISTS}


def _structured_requirements(selector: Mapping[str, Any]) -> list[_Requirement]:
    unknown = sorted(set(selector) - {"matchLabels", "matchExpressions"})
    if unknown:
        raise SelectorError(
            f'unknown field "{unknown[0]}" in label selector: expected matchLabels and/or matchExpressions'
        )
    out = [_requirement(k, _EQ, (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        operator = expr.get("operator")
        if operator not in _EXPRESSION_OPERATORS:
            raise SelectorError(
                f'matchExpressions[{i}].operator: "{operator}" is not a valid label selector operator '
                "(In, NotIn, Exists, DoesNotExist)"
            )
        op = _EXPRESSION_OPERATORS[operator]
        out.append(_requirement(expr.get("key") or "", op, expr.get("values") or ()))
    return sorted(out, key=lambda r: r.key)


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a ``metav1.LabelSelector`` (``{matchLabels, matchExpressions}``).

    As upstream (``LabelSelectorAsSelector``): a ``None`` selector matches nothing; an empty one
    (``{}``, or both lists empty) matches everything; all terms must hold. Raises
    :class:`SelectorError` for an unknown operator, bad key or value, or a field that is not
    ``matchLabels``/``matchExpressions`` (a plain ``{"app": "web"}`` map is not a LabelSelector).
    """
    if selector is None:
        return False
    return _matcher(_structured_requirements(selector))(labels or {})


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """A ``metav1.LabelSelector`` in label-selector syntax, terms sorted by key: ``app=web,tier in (a,b)``.

    This is ``Scale.status.selector`` and what ``-o wide`` shows. ``None`` or an empty selector gives
    ``""``. Raises :class:`SelectorError` for an invalid selector.
    """
    if selector is None:
        return ""
    return ",".join(str(r) for r in _structured_requirements(selector))


# ---------------------------------------------------------------------------
# Field selectors.

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
