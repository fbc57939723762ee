"""One way to wait for something on the client side: look, sleep briefly, look again, until a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
INTERVAL = 0.05  # seconds between looks: loopback requests are cheap, and learners wait for these


def poll_until(
    look: Callable[[], T | None],
    *,
    timeout: float | None = None,
    deadline: float | None = None,
    interval: float = INTERVAL,
    on_timeout: Callable[[], Exception],
) -> T:
    """Call ``look`` until it returns something other than None (or False), and return that;
    raise ``on_timeout()`` once ``deadline`` (``time.monotonic()``) or ``timeout`` seconds pass."""
    if deadline is None:
        deadline = time.monotonic() + (timeout if timeout is not None else 60.0)
    while True:
        seen = look()
        if seen is not None and seen is not False:
            return seen
        if time.monotonic() >= deadline:
            raise on_timeout()
        time.sleep(interval)
