"""How the magics show things: short errors, live progress, sizes.

Errors. :func:`install_error_handler` makes IPython show a :class:`~labkit.errors.LabError`
raised in a cell (by a magic or by plain ``lab.apply(...)``) as one short message and its
hint, with no traceback, while ``Lab.short_errors`` is on (the default); off, the full
traceback comes back. It uses IPython's custom exception hook and keeps any handler another
extension installed for other exception types.

Progress. :class:`Progress` shows lines that change while something runs: in a notebook, one
display that is updated in place; in a terminal, under nbval or pytest (or with
``LABKIT_PROGRESS=plain``), plain printed lines, each once, so saved outputs stay stable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import Any

from labkit.errors import LabError
from labkit.images.models import human_size


def short_message(error: LabError) -> str:
    """What a learner reads: ``ClusterError: message`` and, on its own line, the hint."""
    text = f"{type(error).__name__}: {error.message}"
    return f"{text}\nhint: {error.hint}" if error.hint else text


def install_error_handler(shell: Any, short_errors: Callable[[], bool]) -> None:
    """Show LabErrors raised in cells briefly while ``short_errors()`` is true.

    Installing twice is harmless. A handler already installed for other exception types keeps
    handling them."""
    previous_types: tuple[type[BaseException], ...] = tuple(shell.custom_exceptions)
    if LabError in previous_types:
        return
    previous = shell.CustomTB if previous_types else None

    def handler(
        shell: Any,
        etype: type[BaseException],
        value: BaseException,
        tb: TracebackType | None,
        tb_offset: int | None = None,
    ) -> list[str] | None:
        if not isinstance(value, LabError):
            return previous(etype, value, tb, tb_offset=tb_offset) if previous else None
        if short_errors():
            shell._showtraceback(etype, value, [short_message(value)])
        else:
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return None

    shell.set_custom_exc((*previous_types, LabError), handler)


def live(shell: Any) -> bool:
    """True when progress can update in place: a Jupyter kernel, not under nbval/pytest."""
    if os.environ.get("LABKIT_PROGRESS", "").lower() == "plain" or "PYTEST_CURRENT_TEST" in os.environ:
        return False
    return getattr(shell, "kernel", None) is not None


class Progress:
    """Keyed progress lines: set a key's text and the display follows.

    Live, every change redraws one updating display; otherwise each new text is printed once."""

    def __init__(self, shell: Any) -> None:
        self._lines: dict[object, str] = {}
        self._handle: Any = None
        self.live = live(shell)  # updating in place (True) or printing lines

    def set(self, key: object, text: str) -> None:
        """Show ``text`` as the line for ``key`` (a new key adds a line)."""
        if self._lines.get(key) == text:
            return
        self._lines[key] = text
        if self.live:
            self._draw()
        else:
            print(text, flush=True)

    def line(self, text: str) -> None:
        """Add a line of its own (a repeated text is shown once)."""
        self.set(text, text)

    def text(self) -> str:
        """Everything shown so far, one line per key."""
        return "\n".join(self._lines.values())

    def _draw(self) -> None:
        from IPython.display import display

        bundle = {"text/plain": self.text()}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


def size(n: int) -> str:
    """A size in decimal units as Docker prints it: 950 B, 12.3 MB."""
    return human_size(n)
