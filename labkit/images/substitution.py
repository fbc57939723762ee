"""Variable substitution in Dockerfile words, as Docker's shell lexer does it.

:func:`expand` and :func:`words` substitute ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR:+alt}``, ``${VAR:?message}`` and ``${VAR#prefix}``/``${VAR%suffix}``, with quotes and
the escape character; a malformed or failing ``${...}`` is a :class:`SubstitutionError`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping

NAME_CHARS = re.compile(r"[A-Za-z0-9_]")


class SubstitutionError(ValueError):
    """A ``${VAR:?message}`` whose variable is unset, or a malformed ``${...}``."""


def expand(text: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """``text`` with variables substituted and quotes removed, as one word."""
    return "".join(_Lexer(text, env, escape).words(split=False))


def words(text: str, env: Mapping[str, str] | None, escape: str = "\\") -> list[str]:
    """``text`` split into words at unquoted white space, with variables substituted (unless
    ``env`` is None) and quotes removed."""
    return _Lexer(text, env, escape).words(split=True)


class _Lexer:
    """Docker's shell-word rules: quotes, the escape character, ``$`` expansions."""

    def __init__(self, text: str, env: Mapping[str, str] | None, escape: str) -> None:
        self.text, self.env, self.escape, self.pos = text, env, escape, 0

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _next(self) -> str:
        ch = self._peek()
        self.pos += 1
        return ch

    def words(self, split: bool) -> list[str]:
        found: list[str] = []
        word: list[str] = []
        started = False
        while self.pos < len(self.text):
            ch = self._next()
            if split and ch in " \t\n":
                if started:
                    found.append("".join(word))
                word, started = [], False
                continue
            started = True
            if ch == "'":
                word.append(self._until("'"))
            elif ch == '"':
                word.append(self._double())
            elif ch == self.escape:
                word.append(self._next())
            elif ch == "$" and self.env is not None:
                word.append(self._dollar())
            else:
                word.append(ch)
        if started:
            found.append("".join(word))
        return found

    def _until(self, end: str) -> str:
        start = self.pos
        closing = self.text.find(end, start)
        if closing < 0:
            raise SubstitutionError(f"unmatched {end} in {self.text!r}")
        self.pos = closing + 1
        return self.text[start:closing]

    def _double(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise SubstitutionError(f'unmatched " in {self.text!r}')
            ch = self._next()
            if ch == '"':
                return "".join(out)
            if ch == self.escape and self._peek() in ('"', "$", self.escape):
                out.append(self._next())
            elif ch == "$" and self.env is not None:
                out.append(self._dollar())
            else:
                out.append(ch)

    def _name(self) -> str:
        start = self.pos
        while NAME_CHARS.match(self._peek() or " "):
            self.pos += 1
        return self.text[start : self.pos]

    def _dollar(self) -> str:
        assert self.env is not None
        if self._peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self.pos += 1
        name = self._name()
        if not name:
            raise SubstitutionError(f"bad substitution in {self.text!r}")
        op = self._next()
        if op == "}":
            return self.env.get(name, "")
        if (op == ":" and self._peek() in "-+?") or (op in "#%" and self._peek() == op):
            op += self._next()
        elif op not in "-+?#%":
            raise SubstitutionError(f"unsupported modifier {op!r} in ${{{name}...}} in {self.text!r}")
        word = self._word_until_brace()
        return self._modify(name, op, word)

    def _word_until_brace(self) -> str:
        out: list[str] = []
        while True:
            ch = self._next()
            if not ch:
                raise SubstitutionError(f"missing '}}' in {self.text!r}")
            if ch == "}":
                return "".join(out)
            if ch == self.escape:
                out.append(self._next())
            elif ch == "$":
                out.append(self._dollar())
            elif ch == "'":
                out.append(self._until("'"))
            elif ch == '"':
                out.append(self._double())
            else:
                out.append(ch)

    def _modify(self, name: str, op: str, word: str) -> str:
        assert self.env is not None
        value = self.env.get(name)
        unset_or_empty = not value
        if op in (":-", "-"):
            return word if (unset_or_empty if op == ":-" else value is None) else str(value)
        if op in (":+", "+"):
            return "" if (unset_or_empty if op == ":+" else value is None) else word
        if op in (":?", "?"):
            if unset_or_empty if op == ":?" else value is None:
                raise SubstitutionError(f"{name}: {word or 'parameter not set'}")
            return str(value)
        return _trim(value or "", op, word)


def _trim(value: str, op: str, pattern: str) -> str:
    """``${VAR#pat}``, ``##``, ``%``, ``%%``: remove a matching prefix or suffix."""
    cuts = range(len(value) + 1)
    if op.startswith("#"):
        order = reversed(cuts) if op == "##" else cuts
        for n in order:
            if fnmatch.fnmatchcase(value[:n], pattern):
                return value[n:]
    else:
        order = cuts if op == "%%" else reversed(cuts)
        for n in order:
            if fnmatch.fnmatchcase(value[n:], pattern):
                return value[:n]
    return value
