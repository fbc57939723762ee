"""The object store: sqlite on disk, a cache in memory, one increasing resourceVersion.

Every write is one sqlite transaction, committed before the write is acknowledged, so a
daemon killed with SIGKILL restarts with every object it had acknowledged. Reads are
served from memory. Watchers get every change through an asyncio queue; a short history
of changes lets a watch resume from an older resourceVersion, and a watch from before
that history gets :class:`ExpiredError`, as from kube-apiserver's watch cache.

The store knows nothing of HTTP: its errors are converted into Status objects by the
API server.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rv INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (key, namespace, name)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class StoreError(Exception):
    """Base of the store's errors."""


class NotFoundError(StoreError):
    """No object with that key, namespace and name."""


class AlreadyExistsError(StoreError):
    """An object with that key, namespace and name exists already."""


class ConflictError(StoreError):
    """The caller's resourceVersion is not the stored one."""


class ExpiredError(StoreError):
    """A watch asked for changes older than the history holds."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class Event:
    """One change: its type, the object after it (before it, for DELETED) and its revision."""

    type: str
    key: str
    namespace: str
    obj: dict[str, Any]
    rv: int
    _line: list[bytes] = field(default_factory=list, compare=False, repr=False)

    def line(self) -> bytes:
        """The watch-stream line for this event, serialized once for every watcher."""
        if not self._line:
            self._line.append(json.dumps({"type": self.type, "object": self.obj}).encode() + b"\n")
        return self._line[0]


class Watch:
    """A subscription to changes of one resource key (optionally one namespace)."""

    def __init__(self, store: Store, key: str, namespace: str | None) -> None:
        self.key = key
        self.namespace = namespace
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()  # None: the store is closing
        self._store = store

    def offer(self, event: Event) -> None:
        """Queue the event if it concerns this watch."""
        if self.namespace is None or event.namespace == self.namespace:
            self.queue.put_nowait(event)

    def close(self) -> None:
        """Stop receiving events."""
        self._store._watchers[self.key].discard(self)


def _name_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta["name"]


class Store:
    """Objects by (key, namespace, name), with one resourceVersion counter for all of them."""

    def __init__(self, path: Path | str, history: int = 20000) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = collections.defaultdict(dict)
        for key, ns, name, data in self._db.execute("SELECT key, namespace, name, data FROM objects"):
            self._objects[key][(ns, name)] = json.loads(data)
        row = self._db.execute("SELECT value FROM meta WHERE name = 'rv'").fetchone()
        self._rv = row[0] if row else 0
        self._history: collections.deque[Event] = collections.deque(maxlen=history)
        self._floor = self._rv  # every change after this revision is in the history
        self._watchers: dict[str, set[Watch]] = collections.defaultdict(set)
        self._listeners: list[Callable[[Event], None]] = []

    # -- reads -------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The newest resourceVersion handed out."""
        return self._rv

    def get(self, key: str, namespace: str, name: str) -> dict[str, Any]:
        """A copy of one object; raises :class:`NotFoundError`."""
        try:
            return _copy(self._objects[key][(namespace, name)])
        except KeyError:
            raise NotFoundError(name) from None

    def find(self, key: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of one object, or None."""
        obj = self._objects[key].get((namespace, name))
        return _copy(obj) if obj is not None else None

    def list(self, key: str, namespace: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """The objects of a key (in one namespace, or all) sorted by namespace and name, and the
        revision they were read at. The objects are shared: callers must not change them."""
        items = self._objects[key]
        if namespace is None:
            found = [items[k] for k in sorted(items)]
        else:
            found = [items[k] for k in sorted(items) if k[0] == namespace]
        return found, self._rv

    def namespaces_in_use(self, namespace: str) -> Iterator[tuple[str, str]]:
        """(key, name) of every object in a namespace."""
        for key, items in self._objects.items():
            for ns, name in list(items):
                if ns == namespace:
                    yield key, name

    # -- writes ------------------------------------------------------------------------

    def create(self, key: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object, stamping its resourceVersion; raises :class:`AlreadyExistsError`."""
        ns, name = _name_of(obj)
        if (ns, name) in self._objects[key]:
            raise AlreadyExistsError(name)
        return self._write(ADDED, key, ns, name, obj)

    def update(self, key: str, obj: dict[str, Any], expected_rv: str | None = None) -> dict[str, Any]:
        """Replace an object. With ``expected_rv``, refuse (:class:`ConflictError`) unless it is
        the stored resourceVersion."""
        ns, name = _name_of(obj)
        old = self._objects[key].get((ns, name))
        if old is None:
            raise NotFoundError(name)
        if expected_rv and expected_rv != old["metadata"]["resourceVersion"]:
            raise ConflictError(name)
        return self._write(MODIFIED, key, ns, name, obj)

    def delete(self, key: str, namespace: str, name: str, expected_rv: str | None = None) -> dict[str, Any]:
        """Remove an object and return it as last seen, with the deletion's resourceVersion."""
        old = self._objects[key].get((namespace, name))
        if old is None:
            raise NotFoundError(name)
        if expected_rv and expected_rv != old["metadata"]["resourceVersion"]:
            raise ConflictError(name)
        return self._write(DELETED, key, namespace, name, old)

    def _write(self, kind: str, key: str, ns: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        rv = self._rv + 1
        # the stored object is decoded from its own serialization: it shares nothing with the caller's
        data = json.dumps(
            {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}, separators=(",", ":")
        )
        stored = json.loads(data)
        db = self._db
        db.execute("BEGIN")
        try:
            if kind == DELETED:
                db.execute("DELETE FROM objects WHERE key=? AND namespace=? AND name=?", (key, ns, name))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO objects (key, namespace, name, rv, data) VALUES (?,?,?,?,?)",
                    (key, ns, name, rv, data),
                )
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('rv', ?)", (rv,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._rv = rv
        if kind == DELETED:
            del self._objects[key][(ns, name)]
        else:
            self._objects[key][(ns, name)] = stored
        event = Event(kind, key, ns, stored, rv)
        if len(self._history) == self._history.maxlen:
            self._floor = self._history[0].rv
        self._history.append(event)
        for watch in list(self._watchers.get(key, ())):
            watch.offer(event)
        for listener in self._listeners:
            listener(event)
        return json.loads(data)

    # -- watching ----------------------------------------------------------------------

    def watch(self, key: str, namespace: str | None, since: int | None) -> tuple[Watch, list[Event]]:
        """Subscribe to changes. With ``since``, also return the changes after that revision
        that are already past; raises :class:`ExpiredError` if the history no longer has them."""
        backlog: list[Event] = []
        if since is not None and since < self._rv:
            if since < self._floor:
                raise ExpiredError(since, self._floor + 1)
            backlog = [
                e
                for e in self._history
                if e.rv > since and e.key == key and (namespace is None or e.namespace == namespace)
            ]
        watch = Watch(self, key, namespace)
        self._watchers[key].add(watch)
        return watch, backlog

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` synchronously after every write (for in-process controllers)."""
        self._listeners.append(listener)

    def end_watches(self) -> None:
        """Tell every open watch that no more events will come (the server is stopping)."""
        for watches in self._watchers.values():
            for watch in watches:
                watch.queue.put_nowait(None)

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(obj))
