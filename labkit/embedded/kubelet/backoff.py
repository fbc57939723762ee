"""Restart and image-pull back-off, with kubelet's rules, and Go's way of printing durations.

The first failure is retried at once; each later one waits the current delay, which starts at
``base`` and doubles up to ``cap``. A key that has gone ``2 * cap`` without a new failure
starts over (kubelet: 10 s doubling to 300 s, reset after 10 minutes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    updated: float


class Backoff:
    """Per-key back-off delays."""

    def __init__(self, base: float, cap: float) -> None:
        self.base = base
        self.cap = max(cap, base)
        self._entries: dict[str, _Entry] = {}

    def delay(self, key: str, now: float | None = None) -> float:
        """Seconds to wait before retrying after a failure of ``key`` at ``now``: 0 the first
        time (or after a long good run), else the current delay."""
        now = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        if entry is None or now - entry.updated > 2 * self.cap:
            self._entries[key] = _Entry(self.base, now)
            return 0.0
        return entry.delay

    def retried(self, key: str, now: float | None = None) -> None:
        """A retry after a wait happened: the next wait doubles."""
        now = time.monotonic() if now is None else now
        entry = self._entries.get(key)
        if entry is not None:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.updated = now

    def wait_after_failure(self, key: str, now: float | None = None) -> float:
        """For image pulls, which always wait: the delay to wait now (``base`` the first time),
        doubling for the next failure."""
        delay = self.delay(key, now) or self.base
        self.retried(key, now)
        return delay

    def forget(self, key: str) -> None:
        """Drop what is known of ``key``."""
        self._entries.pop(key, None)


def go_duration(seconds: float) -> str:
    """A duration as Go's ``time.Duration.String`` prints it (``200ms``, ``10s``, ``1m20s``,
    ``5m0s``), to the millisecond (microseconds below one)."""
    if seconds < 0.001:
        micros = round(seconds * 1_000_000)
        return f"{micros}µs" if micros else "0s"
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
