"""The shape every decoded body must have before anything else reads it.

JSON and YAML decoders in Python accept more than a Kubernetes object can hold: integers of
any size, infinities, lone UTF-16 surrogates, YAML keys that are numbers, dates or sets. Each of
those used to travel into the store and fail there with a 500. :func:`check` walks a decoded
value once, without recursing, and refuses the first problem with a 400 that names the field.
It also bounds the work a body can cause: its depth and its number of values.
"""

from __future__ import annotations

from typing import Any

from labkit.embedded.apiserver.status import bad_request

MAX_DEPTH = 100  # real objects nest about 20 deep; deeper input is refused, not recursed into
MAX_NODES = 300_000  # values in one body: a 3 MiB object of real fields has far fewer
MAX_DIGITS = 40  # longer integer literals are not parsed at all (Python refuses over 4,300)


class BigNumber:
    """A JSON number literal too large to be any Kubernetes field (kept as text, never stored)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def describe(self) -> str:
        """The literal, shortened when long (``1111…1111 (5000 digits)``)."""
        if len(self.text) <= MAX_DIGITS:
            return self.text
        return f"{self.text[:8]}…{self.text[-4:]} ({len(self.text)} digits)"


def parse_int(text: str) -> int | BigNumber:
    """``json.loads`` hook: integers beyond 64 bits stay text, so a huge literal costs nothing."""
    if len(text.lstrip("-")) > MAX_DIGITS:
        return BigNumber(text)
    return int(text)


def parse_float(text: str) -> float | BigNumber:
    """``json.loads`` hook: a float that overflows (``1e400``) is refused later, not turned into inf."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        return BigNumber(text)
    return value


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check(value: Any, what: str = "request body") -> None:
    """Refuse (400) the first value a Kubernetes object cannot hold, naming its field."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    nodes = 0
    while stack:
        item, path, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise bad_request(f"{what} has more than {MAX_NODES} values: split it into smaller objects")
        if depth > MAX_DEPTH:
            raise bad_request(f"{what} is nested more than {MAX_DEPTH} levels deep")
        where = path or "the top level"
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise bad_request(
                        f"{what}: the key {key!r} in {where} is a {_kind(key)}: object keys are "
                        f'strings (quote it: "{key}")'
                    )
                if _surrogate(key):
                    raise bad_request(f"{what}: the key {key!r} in {where} is not valid Unicode text")
                stack.append((child, _join(path, key), depth + 1))
        elif isinstance(item, list):
            stack.extend((child, _join(path, i), depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            if _surrogate(item):
                raise bad_request(
                    f"{what}: {where} is not valid Unicode text (it holds a lone UTF-16 surrogate)"
                )
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            continue  # ranges are the schema's business (fields.py): int32 or int64 per field
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise bad_request(f"{what}: {where}: {item} is not a number a field can hold")
        elif isinstance(item, BigNumber):
            raise bad_request(f"{what}: {where}: the number {item.describe()} does not fit in 64 bits")
        else:
            raise bad_request(
                f"{what}: {where} is a {_kind(item)} ({item!r:.60}): only strings, numbers, "
                "booleans, lists and objects are allowed (quote it to make it a string)"
            )


def _kind(value: Any) -> str:
    return {
        int: "number",
        float: "number",
        bool: "boolean",
        bytes: "binary value",
        set: "set",
        tuple: "list",
    }.get(type(value), type(value).__name__)
