"""Helpers shared by the embedded cluster's integration tests (not fixtures: plain functions)."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from typing import Any

from tests.conftest import Cluster


def deployment(name: str = "web", replicas: int = 2, image: str = "nginx:1.27") -> dict[str, Any]:
    """A minimal valid Deployment whose pods are labelled ``app=<name>``."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def config_map(name: str, **data: str) -> dict[str, Any]:
    """A ConfigMap holding ``data``."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def assert_status(body: Any, code: int, reason: str, message: str | None = None) -> dict[str, Any]:
    """``body`` is a failure Status with this code and reason (and, if given, containing ``message``)."""
    assert isinstance(body, dict), f"expected a Status object, got {body!r}"
    assert body.get("kind") == "Status" and body.get("apiVersion") == "v1", body
    assert body.get("status") == "Failure", body
    assert body.get("code") == code, body
    assert body.get("reason") == reason, body
    assert isinstance(body.get("message"), str) and body["message"], body
    if message is not None:
        assert message in body["message"], body["message"]
    return body


def assert_response(
    http_status: int, body: Any, code: int, reason: str, message: str | None = None
) -> dict[str, Any]:
    """An HTTP answer with status ``code`` whose body is the matching failure Status."""
    assert http_status == code, f"expected HTTP {code}, got {http_status}: {body!r:.500}"
    return assert_status(body, code, reason, message)


def watch_events(cluster: Cluster, path: str, timeout: float = 15) -> list[dict[str, Any]]:
    """Every event of a watch that ends by itself (``timeoutSeconds`` or an ERROR), in order."""
    status, body, headers = cluster.request("GET", path, timeout=timeout)
    assert status == 200, body
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    if isinstance(body, dict):  # exactly one event: it parsed as one JSON document
        return [body]
    return [json.loads(line) for line in body.splitlines() if line.strip()]


class LineReader:
    """Collects a subprocess's stdout lines in a thread, so a test can wait for one with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = 15) -> str:
        """The first (new) line matching the regex ``pattern``; fails with all output on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.01)) if remaining > 0 else None
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(
                    f"no line matching {pattern!r} within {timeout} s; output so far:\n"
                    + "\n".join(self.lines)
                )
            self.lines.append(line)
            if re.search(pattern, line):
                return line
