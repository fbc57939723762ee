"""Live pictures of a cluster: watch pods and nodes, and hand fresh models to a callback.

:class:`ClusterWatch` keeps one watch stream on the pods (of a namespace, or all) and one on
the nodes. A change on either marks the picture stale; a refresher thread then reads the pods
and nodes again (the same Table reads as ``lab.pods()``) and calls ``on_change(nodes, pods)``,
at most ``max_rate`` times a second, so a burst of 50 pod updates is one or two redraws.

Every thread is a daemon thread that :meth:`ClusterWatch.stop` ends and joins: stopping shuts
the watch sockets, so a blocked read returns at once. A watch that the server ends (its
timeout) or that breaks is opened again after a short back-off.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable

from labkit.errors import LabError
from labkit.kube.client import KubeClient
from labkit.kube.listing import nodes as list_nodes
from labkit.kube.listing import pods as list_pods
from labkit.kube.models import Nodes, Pods

OnChange = Callable[[Nodes, Pods], None]
OnError = Callable[[str], None]
WATCH_SECONDS = 240  # the server ends each watch after this; it is then opened again


class ClusterWatch:
    """Watches pods and nodes; calls ``on_change(nodes, pods)`` after each change (throttled)."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str | None,
        on_change: OnChange,
        *,
        selector: str | None = None,
        max_rate: float = 25.0,
        on_error: OnError | None = None,
    ) -> None:
        self.kube, self.namespace, self.selector = kube, namespace, selector
        self.on_change, self.on_error = on_change, on_error
        self.min_interval = 1.0 / max_rate
        self.refreshes = 0  # how many times on_change was called
        self._stale = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[http.client.HTTPConnection] = set()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        """Whether the watch threads run (started and not stopped)."""
        return bool(self._threads) and not self._stopped.is_set()

    def start(self) -> ClusterWatch:
        """Start watching (the first picture follows at once); returns self."""
        pods = f"/api/v1/namespaces/{self.namespace}/pods" if self.namespace else "/api/v1/pods"
        query = {"labelSelector": self.selector} if self.selector else {}
        jobs = {"pods": (self._watch, (pods, query)), "nodes": (self._watch, ("/api/v1/nodes", {})),
                "refresh": (self._refresh_loop, ())}  # fmt: skip
        self._threads = [
            threading.Thread(target=job, args=args, name=f"labkit-watch-{name}", daemon=True)
            for name, (job, args) in jobs.items()
        ]
        self._stale.set()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and wait for the threads to end."""
        self._stopped.set()
        self._stale.set()
        with self._lock:
            for conn in list(self._connections):
                _shut(conn)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    # -- the watch streams --------------------------------------------------------------------

    def _watch(self, path: str, query: dict[str, str]) -> None:
        backoff = 0.2
        while not self._stopped.is_set():
            try:
                self._stream(path, query)
                backoff = 0.2
            except (OSError, http.client.HTTPException, ValueError, LabError) as err:
                if self._stopped.is_set():
                    return
                self._report(f"watching {path} failed ({err}); trying again")
            self._stopped.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    def _stream(self, path: str, query: dict[str, str]) -> None:
        params = urllib.parse.urlencode({**query, "watch": "1", "timeoutSeconds": str(WATCH_SECONDS)})
        conn = self.kube.connection(timeout=WATCH_SECONDS + 30)
        with self._lock:
            if self._stopped.is_set():
                return
            self._connections.add(conn)
        try:
            conn.request("GET", f"{self.kube.base_path}{path}?{params}", headers=self.kube.headers())
            response = conn.getresponse()
            if self._stopped.is_set():  # stopped while connecting: its socket was not there to shut
                return
            if response.status != 200:
                raise LabError(f"the API server answered {response.status} to a watch of {path}")
            while not self._stopped.is_set():
                line = response.readline()
                if not line:
                    return  # the server ended the watch
                if line.strip():
                    event = json.loads(line)
                    if event.get("type") == "ERROR":  # e.g. 410 Gone: watch again from now
                        return
                    self._stale.set()
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    # -- the refresher ------------------------------------------------------------------------

    def _refresh_loop(self) -> None:
        api = self.kube.http()
        last = 0.0
        try:
            while True:
                self._stale.wait()
                if self._stopped.is_set():
                    return
                wait = last + self.min_interval - time.monotonic()
                if wait > 0 and self._stopped.wait(wait):
                    return
                self._stale.clear()
                last = time.monotonic()
                try:
                    pods = list_pods(api, self.namespace, self.selector)
                    nodes = list_nodes(api, self.namespace, pods)  # counted from these pods, not read again
                except LabError as err:
                    self._report(err.message)
                    self._stopped.wait(1.0)
                    self._stale.set()
                    continue
                if self._stopped.is_set():
                    return
                self.refreshes += 1
                self.on_change(nodes, pods)
        finally:
            api.close()

    def _report(self, message: str) -> None:
        if self.on_error is not None:
            self.on_error(message)


def _shut(conn: http.client.HTTPConnection) -> None:
    """End a blocked read on ``conn`` from another thread."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
