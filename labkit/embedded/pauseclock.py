"""A monotonic clock that stands still while the daemon does not run.

Every component of an embedded cluster lives in one process. When that process is suspended
(SIGSTOP, a laptop lid closed) or its event loop is blocked, the kubelets cannot renew their
Leases, but neither could a real kubelet's node controller have watched them: on a real
cluster both sides are separate machines, and a controller only counts time it was awake to
see. :class:`PauseClock` gives the node controller that view: a ticker notes how late it
wakes up, and any gap longer than :data:`STALL` is taken out of the clock, so resuming from a
pause never looks like every kubelet went silent at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

TICK = 0.25  # seconds between two looks at the clock
STALL = 1.0  # a tick this much later than due means the whole daemon did not run


class PauseClock:
    """``now()`` is ``time.monotonic()`` minus the time the daemon was stalled."""

    def __init__(self, source: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.paused = 0.0  # seconds taken out so far
        self._last = source()
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        """The clock; counts a stall that is still being noticed (the ticker has not run yet)."""
        self._catch_up()
        return self.source() - self.paused

    def _catch_up(self) -> None:
        current = self.source()
        gap = current - self._last
        if gap > TICK + STALL:
            self.paused += gap - TICK
        self._last = current

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self._catch_up()

    def start(self) -> None:
        """Start the ticker on the running loop."""
        self._last = self.source()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pause clock")

    async def stop(self) -> None:
        """Stop the ticker."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
