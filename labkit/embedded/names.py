"""Service names for pods, as cluster DNS gives them: each pod's ``/etc/hosts``, kept up to date.

Every Service answers to ``NAME.NS``, ``NAME.NS.svc`` and ``NAME.NS.svc.cluster.local``, and in
its own namespace to plain ``NAME``: a ClusterIP Service at its cluster IP, a headless one at
the IPs of its ready pods (as CoreDNS answers), and each of those pods at
``HOSTNAME.SUBDOMAIN.NS.svc.cluster.local`` when its ``spec.subdomain`` names the Service.
The kubelet registers the hosts file of every pod it runs; :class:`ClusterNames` rewrites them
in place (the file is bind-mounted, so its inode must stay) a moment after Services or
Endpoints change, so names of Services made after a pod started resolve too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.embedded.store import Event, Store

DOMAIN = "cluster.local"
SETTLE = 0.02  # seconds: one rewrite for a burst of changes


@dataclass(frozen=True)
class PodName:
    """A pod whose hosts file this keeps."""

    namespace: str
    ip: str
    hostname: str


class ClusterNames:
    """Renders and writes the hosts files of the pods of one cluster."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pods: dict[Path, PodName] = {}
        self._pending: asyncio.Handle | None = None

    def register(self, hosts: Path, namespace: str, ip: str, hostname: str) -> None:
        """Keep ``hosts`` (a pod's ``/etc/hosts``) up to date; written at once."""
        pod = PodName(namespace, ip, hostname)
        self.pods[hosts] = pod
        self._write(hosts, self.render(pod, self._entries()))

    def unregister(self, hosts: Path) -> None:
        """Stop keeping ``hosts``."""
        self.pods.pop(hosts, None)

    def notify(self, event: Event) -> None:
        """A stored object changed: Services and Endpoints change what names mean."""
        if event.key not in ("core/services", "core/endpoints") or not self.pods:
            return
        if self._pending is None:
            with contextlib.suppress(RuntimeError):
                self._pending = asyncio.get_running_loop().call_later(SETTLE, self.refresh)

    def refresh(self) -> None:
        """Rewrite every registered hosts file."""
        self._pending = None
        entries = self._entries()
        for path, pod in list(self.pods.items()):
            self._write(path, self.render(pod, entries))

    def _entries(self) -> list[tuple[str, str, str]]:
        """(namespace, ip, name) for every Service address, and for pods behind headless ones."""
        out: list[tuple[str, str, str]] = []
        services, _ = self.store.list("core/services", None)
        for svc in services:
            meta, spec = svc["metadata"], svc.get("spec") or {}
            ns, name = meta.get("namespace", "default"), meta["name"]
            ip = str(spec.get("clusterIP") or "")
            if ip and ip != "None":
                out.append((ns, ip, name))
                continue
            if spec.get("type") == "ExternalName":
                continue
            for address in _ready_addresses(self.store.find("core/endpoints", ns, name)):
                out.append((ns, str(address["ip"]), name))
                if address.get("hostname"):
                    out.append((ns, str(address["ip"]), f"{address['hostname']}.{name}"))
        return out

    @staticmethod
    def render(pod: PodName, entries: list[tuple[str, str, str]]) -> str:
        """The hosts file of ``pod``."""
        lines = [
            "# Kubernetes-managed hosts file (labkit: Service names, as cluster DNS answers them)",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            f"{pod.ip}\t{pod.hostname}",
        ]
        for ns, ip, name in entries:
            full = f"{name}.{ns}.svc.{DOMAIN}"
            names = [f"{name}.{ns}", f"{name}.{ns}.svc", full]
            if ns == pod.namespace:
                names.insert(0, name)
            lines.append(f"{ip}\t" + " ".join(names))
        return "\n".join(lines) + "\n"

    @staticmethod
    def _write(path: Path, text: str) -> None:
        """Write in place, keeping the inode that containers have mounted."""
        data = text.encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)


def _ready_addresses(endpoints: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not endpoints:
        return []
    return [a for subset in endpoints.get("subsets") or [] for a in subset.get("addresses") or []]
