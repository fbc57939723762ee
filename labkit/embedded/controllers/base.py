"""The control-loop machinery: a deduplicating work queue and a level-triggered controller.

A controller says which store keys concern it and maps each change to the keys of the
objects it reconciles. ``reconcile`` reads the current state and acts; it may ask to be
called again later (for timeouts and back-offs). Conflicts and errors requeue the key with
a growing delay, so a loop never dies of one bad object.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.store import Event

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

log = logging.getLogger("labkit.controllers")


class WorkQueue:
    """Keys to process, each at most once in the queue; a key re-added while being processed is
    processed again afterwards. ``add(key, after)`` delays an addition."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def add(self, key: Key, after: float = 0.0) -> None:
        """Queue ``key`` now, or after ``after`` seconds (an earlier request wins)."""
        if after > 0:
            loop = asyncio.get_running_loop()
            timer = self._timers.get(key)
            due = loop.time() + after
            if timer is not None and timer.when() <= due:
                return
            if timer is not None:
                timer.cancel()
            self._timers[key] = loop.call_at(due, self._fire, key)
            return
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> Key:
        """The next key; it may be added again from now on."""
        key = await self._queue.get()
        self._pending.discard(key)
        return key

    def close(self) -> None:
        """Cancel delayed additions."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()


class Controller:
    """A level-triggered control loop over one kind of object."""

    name = "controller"
    watches: tuple[str, ...] = ()  # store keys (``apps/deployments``) whose changes concern it
    # seconds to wait after a change of these store keys, so that a burst (1,000 pods coming up)
    # gives one reconcile, not one per change
    coalesce: dict[str, float] = {}

    def __init__(self, ctx: ClusterContext) -> None:
        self.ctx = ctx
        self.queue = WorkQueue()
        self._failures: dict[Key, int] = {}
        self._task: asyncio.Task[None] | None = None

    def keys_for(self, event: Event) -> Iterable[Key]:
        """The keys to reconcile after a change: by default the changed object itself."""
        meta = event.obj["metadata"]
        return [(meta.get("namespace", ""), meta["name"])]

    async def reconcile(self, key: Key) -> float | None:
        """Move one object towards its spec; return seconds after which to look again, or None."""
        raise NotImplementedError

    def initial_keys(self) -> Iterable[Key]:
        """Keys to reconcile at start (after a restart): every object of the first watched key."""
        if not self.watches:
            return []
        items, _ = self.ctx.store.list(self.watches[0])
        return [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in items]

    def notify(self, event: Event) -> None:
        """Called for every store change; queues what concerns this controller."""
        if event.key in self.watches:
            delay = self.coalesce.get(event.key, 0.0)
            for key in self.keys_for(event):
                self.queue.add(key, delay)

    def start(self) -> None:
        """Start the loop."""
        for key in self.initial_keys():
            self.queue.add(key)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop the loop."""
        self.queue.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                again = await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # one bad object must not stop the loop
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(0.05 * 2**failures, 5.0)
                if not (isinstance(e, ApiError) and e.code in (404, 409)):
                    log.warning("%s: reconciling %s failed (%s); retrying in %.2fs", self.name, key, e, delay)
                self.queue.add(key, delay)
                continue
            self._failures.pop(key, None)
            if again is not None:
                self.queue.add(key, again)


def owner_key(obj: dict[str, Any], kind: str) -> Key | None:
    """The (namespace, name) of the controlling owner of ``obj`` if it is of ``kind``."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind:
            return obj["metadata"].get("namespace", ""), ref["name"]
    return None
