"""What the Lab needs from a cluster target: a small interface, one implementation per target.

A backend knows how to bring its cluster up, where its kubeconfig is, how images built here
reach its nodes and whether it can power nodes off. Everything else (applying manifests,
waiting, listing) goes through the Kubernetes API and is the same for every target.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import UsageError
from labkit.images.models import BuildResult, ProgressCallback


@dataclass(frozen=True)
class ClusterInfo:
    """Which cluster a backend talks to."""

    cluster: str  # the cluster's name ("labkit", "kind-labkit", a kubeconfig cluster entry)
    context: str  # the kubeconfig context the Lab uses
    kubeconfig: Path


class ClusterBackend(abc.ABC):
    """One cluster target. Methods may raise :class:`~labkit.errors.LabError` subclasses only."""

    name: str = ""  # "embedded", "kind" or "kubeconfig"
    builder: str = ""  # which builder makes its images: "embedded" or "docker"
    has_load_balancer: bool = True  # whether a LoadBalancer Service gets an external address

    @abc.abstractmethod
    def ensure_running(self) -> None:
        """Make sure the cluster answers: start (or create) it when this target can."""

    @abc.abstractmethod
    def describe(self) -> ClusterInfo:
        """The cluster's name, the context to use and the kubeconfig file holding it."""

    @abc.abstractmethod
    def build(
        self,
        dockerfile: str,
        tag: str,
        context: Path | None,
        *,
        build_args: Mapping[str, str] | None = None,
        no_cache: bool = False,
        progress: ProgressCallback | None = None,
    ) -> BuildResult:
        """Build ``dockerfile`` (its text) with the builder this target uses."""

    @abc.abstractmethod
    def load_image(self, tag: str) -> None:
        """Make a built image available to the cluster's nodes (load it, push it, or nothing)."""

    def pod_url(self, pod: dict[str, Any], port: int) -> str | None:
        """Where a pod's ``port`` answers from this machine, when the target lets the client reach
        pods directly (the embedded cluster); None elsewhere (use a port-forward)."""
        return None

    def supports_node_power(self) -> bool:
        """Whether nodes can be powered off and on (only the embedded cluster's can)."""
        return False

    def set_node_power(self, node: str, on: bool) -> None:
        """Power a node off or on again."""
        raise UsageError(
            f"stopping and starting nodes works on the embedded cluster only, not on {self.name}",
            "to take a node out of service here, use lab.cordon(node) and lab.drain(node)",
        )
