"""The narrow interfaces inside a kubelet: what a pod worker and the simulated runtime need of
their node's :class:`~labkit.embedded.kubelet.kubelet.Kubelet` (:class:`NodeHost`), and what a
container runner needs of its pod worker (:class:`PodHost`).

They keep the modules below the kubelet (``pod``, ``container``, ``simulated``) from importing
the modules above them, so the kubelet's files form no import cycle, even for type checking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from labkit.embedded.context import ClusterContext
from labkit.embedded.kubelet.backoff import Backoff
from labkit.embedded.kubelet.filesystem import PodFiles, Sandbox
from labkit.embedded.kubelet.network import IpPool
from labkit.embedded.kubelet.process import ProcessRuntime
from labkit.embedded.kubelet.volumes import PodVolumes
from labkit.embedded.names import ClusterNames
from labkit.embedded.runnable_images import ImageStore


class NodeHost(Protocol):
    """One node's kubelet, as its pod workers, container runners and simulated pods see it."""

    ctx: ClusterContext
    node: str
    host_ip: str
    images: ImageStore
    runtime: ProcessRuntime
    names: ClusterNames
    pool: IpPool
    crash_backoff: Backoff
    pull_backoff: Backoff
    running: bool
    http_proxy: Callable[[str], str] | None

    def sandbox(self) -> Sandbox | Exception:
        """How containers are isolated on this node, or why they cannot be."""
        ...

    def finished(self, worker: Any) -> None:
        """A pod worker is done with its pod (it was deleted, or the node went away)."""
        ...


class PodHost(Protocol):
    """One pod's worker, as its container runners see it."""

    kubelet: NodeHost
    pod: dict[str, Any]
    ip: str
    directory: Path
    files: PodFiles
    volumes: PodVolumes
    restart_policy: str
    terminating: asyncio.Event
    halted: bool
    name: str
    namespace: str
    uid: str

    def attempted(self, runner: Any) -> None:
        """A container finished an attempt to start (the pod's status may change)."""
        ...

    def port_for(self, container: str, container_port: int | None) -> int | None:
        """The port a container's app is told to listen on."""
        ...

    def event(self, kind: str, reason: str, message: str, field_path: str = "") -> None:
        """Record an event about the pod."""
        ...

    def publish(self) -> None:
        """Write the pod's status now."""
        ...

    def grace(self) -> float:
        """The pod's termination grace period, in seconds."""
        ...
