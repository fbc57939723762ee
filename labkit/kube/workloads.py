"""Changing workloads the way a lesson does: scale a Deployment, kill a pod, run an image once."""

from __future__ import annotations

import re
import secrets
import socket
import urllib.parse
from typing import Any

from labkit.errors import ClusterError, UsageError
from labkit.kube.http import Api, expect_ok
from labkit.kube.poll import poll_until
from labkit.shared.contract import RUN_LABEL


def scale(api: Api, namespace: str, deployment: str, replicas: int) -> None:
    """Set a Deployment's replicas (``"web"`` or ``"deployment/web"``) through its scale subresource."""
    if replicas < 0:
        raise UsageError(f"replicas must be 0 or more, not {replicas}")
    name = deployment.split("/", 1)[-1]
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
    status, body = api.request(
        "PATCH", path, {"spec": {"replicas": replicas}}, content_type="application/merge-patch+json"
    )
    expect_ok(status, body, f'deployment "{name}"', namespace)


def kill(api: Api, namespace: str, pod: str) -> None:
    """Delete a pod at once (no grace period), as a crash would end it; its owner replaces it."""
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}"
    status, body = api.request("DELETE", path, query={"gracePeriodSeconds": "0"})
    expect_ok(status, body, f'pod "{pod}"', namespace)


def run_pod(tag: str, port: int | None) -> dict[str, Any]:
    """The Pod that runs ``tag`` once for a quick check (``lab.run`` on a cluster): never restarted,
    with ``containerPort: port`` when a port is given, and labelled as a run."""
    name = f"run-{re.sub(r'[^a-z0-9]+', '-', tag.lower()).strip('-')[:40]}-{secrets.token_hex(2)}"
    container: dict[str, Any] = {"name": "main", "image": tag, "imagePullPolicy": "IfNotPresent"}
    if port is not None:
        container["ports"] = [{"containerPort": port}]
        container["env"] = [{"name": "PORT", "value": str(port)}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {RUN_LABEL: "true"}},
        "spec": {"containers": [container], "restartPolicy": "Never"},
    }


def wait_answering(url: str, name: str, timeout: float) -> None:
    """Wait until something accepts connections at ``url``'s host and port (a pod with no
    readinessProbe is Ready as soon as it runs, before its app listens); ClusterError naming
    the pod and where to look if nothing does within ``timeout`` seconds."""
    parts = urllib.parse.urlsplit(url)

    def answers() -> bool:
        try:
            socket.create_connection((parts.hostname, parts.port or 80), timeout=1).close()
            return True
        except OSError:
            return False

    poll_until(answers, timeout=timeout, on_timeout=lambda: ClusterError(
        f"pod {name} runs, but nothing listens at {parts.hostname}:{parts.port} after {timeout:.0f} s",
        f"check the port the app listens on, and what it printed: lab.logs({name!r})",
    ))  # fmt: skip
