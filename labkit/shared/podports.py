"""Where a pod's ports are reached: its pod IP, with privileged ports offset.

A shared leaf (it imports only the contract constants), used by the kubelet, the Service
listeners, the proxies and the API server's pod proxy and port-forward, so that none of
them imports the kubelet, and by the client (a run's URL, a pinned connection). The sandbox's
network shim serves port 80 of a pod or a ClusterIP at ``80 + PRIVILEGED_OFFSET`` (ports below
1024 need root), invisibly to apps; connections
made from outside the shim (the daemon's own) use :func:`real_port`. Pods of an older daemon
may still carry a ``labkit.dev/ports`` map of real ports; it is honoured.
"""

from __future__ import annotations

import json
from typing import Any

from labkit.shared.contract import PORTS_ANNOTATION

CONNECT_HOST = "127.0.0.1"  # where a pod without an IP yet is looked for
PRIVILEGED_OFFSET = 20000  # port 80 of a pod or a ClusterIP is served at 20080


def real_port(port: int) -> int:
    """The port a cluster address really serves ``port`` on (privileged ones are offset)."""
    return port + PRIVILEGED_OFFSET if 0 < port < 1024 else port


def pod_ports(pod: dict[str, Any]) -> dict[str, dict[int, int]]:
    """The recorded mapping: container name → {containerPort: real port}."""
    text = (pod.get("metadata", {}).get("annotations") or {}).get(PORTS_ANNOTATION)
    if not text:
        return {}
    try:
        raw = json.loads(text)
        return {name: {int(k): int(v) for k, v in ports.items()} for name, ports in raw.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def pod_address(pod: dict[str, Any], port: int | str) -> tuple[str, int] | None:
    """Where to connect to reach ``port`` of a pod: a containerPort number or name (as a
    Service's targetPort gives it): the pod's IP and that port (offset when privileged). None
    for a name no container declares."""
    containers = pod.get("spec", {}).get("containers") or []
    number: int | None = None
    if isinstance(port, str) and not port.isdigit():
        for container in containers:
            for p in container.get("ports") or []:
                if p.get("name") == port:
                    number = int(p["containerPort"])
        if number is None:
            return None
    else:
        number = int(port)
    for mapping in pod_ports(pod).values():
        if number in mapping:
            return CONNECT_HOST, mapping[number]
    ip = str((pod.get("status") or {}).get("podIP") or CONNECT_HOST)
    return ip, real_port(number)
