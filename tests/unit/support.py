"""Helpers the embedded cluster's unit tests share (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(what: Callable[[], Any], timeout: float = 1.0) -> Any:
    """Poll until ``what()`` is truthy (within ``timeout`` seconds); its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what()!r}")
        await asyncio.sleep(0.005)
