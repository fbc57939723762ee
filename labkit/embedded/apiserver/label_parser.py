"""The ``?labelSelector=`` text syntax (``app=web,tier in (a,b),!canary``): lexer and parser.

The grammar, token rules and error messages are apimachinery's ``labels.Parse``; every problem
raises :class:`~labkit.embedded.apiserver.selector_errors.SelectorError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from labkit.embedded.apiserver.label_requirements import (
    BINARY_OPERATORS,
    EQ,
    EQ2,
    EXISTS,
    GT,
    IN,
    LT,
    NE,
    NOT_EXISTS,
    NOT_IN,
    Requirement,
    check_key,
    matcher,
    new_requirement,
)
from labkit.embedded.apiserver.selector_errors import SelectorError

_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")
_SYMBOLS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "<": "<", "!=": "!=", "(": "("}
_KEYWORDS = {"in": IN, "notin": NOT_IN}
_ID, _END, _ERROR = "identifier", "end", "error"
_OPERATOR_TOKENS = {IN: IN, NOT_IN: NOT_IN, "=": EQ, "==": EQ2, "!=": NE, ">": GT, "<": LT}


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
        return (_ID, item[1]) if as_value and item[0] in (IN, NOT_IN) else item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
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

    def requirement(self) -> Requirement:
        key, op = self.key_and_implied_operator()
        if op in (EXISTS, NOT_EXISTS):
            return new_requirement(key, op, ())
        op = self.operator()
        values = self.value_set() if op in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, op, sorted(values))

    def key_and_implied_operator(self) -> tuple[str, str]:
        op = ""
        kind, literal = self.take()
        if kind == "!":
            op = NOT_EXISTS
            kind, literal = self.take()
        if kind != _ID:
            raise SelectorError(f"found '{literal}', expected: identifier")
        check_key(literal)
        if self.peek()[0] in (_END, ","):
            op = op or EXISTS
        return literal, op

    def operator(self) -> str:
        kind, literal = self.take(as_value=False)
        if kind not in _OPERATOR_TOKENS:
            raise SelectorError(f"found '{literal}', expected: {', '.join(BINARY_OPERATORS)}")
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
    return matcher(sorted(_Parser(text).parse(), key=lambda r: r.key))
