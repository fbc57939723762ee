"""Pod addresses: an IP per pod from its node's pod range, and the ports its apps listen on.

Pods get loopback IPs from their node's ``spec.podCIDR`` (``127.244.<n>.0/24`` in the first
cluster's address block). The sandbox's
network shim (:mod:`labkit.sandbox.native`) makes an app that listens on any port on all
addresses listen on its own pod IP instead, so every pod has every port, as in a real
cluster. Privileged ports (1-1023) need root, so they are served ``PRIVILEGED_OFFSET`` higher
on cluster addresses, for pods and Service listeners alike; the shim translates both ways,
invisibly to apps. :func:`pod_address` turns any port of a pod (a number or a containerPort
name) into the address to connect to. Pods of an older daemon may still carry a
``labkit.dev/ports`` map of real ports; it is honoured.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from typing import Any

from labkit.embedded.runnable_images import Image
from labkit.shared.podports import (  # noqa: F401 (the kubelet's names for them)
    CONNECT_HOST,
    PORTS_ANNOTATION,
    PRIVILEGED_OFFSET,
    pod_address,
    pod_ports,
    real_port,
)


class PoolExhaustedError(Exception):
    """Every address of the node's pod range is in use."""


class IpPool:
    """The free addresses of one pod range, handed out in turn (as host-local IPAM does), so
    that an address just released is not given out again at once."""

    def __init__(self, cidr: str) -> None:
        network = ipaddress.ip_network(cidr, strict=False)
        self.hosts = [str(a) for a in network.hosts()][1:]  # .1 is the gateway's
        self.used: set[str] = set()
        self._next = 0

    def contains(self, ip: str) -> bool:
        """Whether ``ip`` belongs to this range."""
        return ip in self.hosts

    def take(self, wanted: str | None = None) -> str:
        """``wanted`` if it is in the range and free, else the next free address."""
        if wanted and wanted in self.hosts and wanted not in self.used:
            self.used.add(wanted)
            return wanted
        for step in range(len(self.hosts)):
            candidate = self.hosts[(self._next + step) % len(self.hosts)]
            if candidate not in self.used:
                self._next = (self._next + step + 1) % len(self.hosts)
                self.used.add(candidate)
                return candidate
        raise PoolExhaustedError(
            f"failed to allocate for range 0: no IP addresses available in range set: "
            f"{self.hosts[0]}-{self.hosts[-1]}"
        )

    def release(self, ip: str) -> None:
        """Give an address back."""
        self.used.discard(ip)


def free_port() -> int:
    """A TCP port that nothing listens on, on any address."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def port_available(port: int) -> bool:
    """Whether ``port`` can be listened on, on all addresses (connections of an earlier
    listener that linger in TIME_WAIT do not count, as servers set SO_REUSEADDR)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return False
        return True


def first_port(container: dict[str, Any], image: Image | None) -> int | None:
    """The port that ``PORT`` stands for: the first containerPort, else the image's first."""
    for port in container.get("ports") or []:
        if port.get("containerPort"):
            return int(port["containerPort"])
    if image is not None and image.config.exposed_ports:
        return image.config.exposed_ports[0]
    return None
