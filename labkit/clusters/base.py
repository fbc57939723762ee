"""What the Lab needs from a cluster target: a small interface, one implementation per target.

A backend knows how to bring its cluster up, where its kubeconfig is, which image builder its
nodes can run images from, how images built here reach its nodes, and whether it can power
nodes off. Building itself is the builder's (:mod:`labkit.images.builders`); everything else
(applying manifests, waiting, listing) goes through the Kubernetes API, the same for every target.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import UsageError
from labkit.images.builders import ImageBuilder


@dataclass(frozen=True)
class ClusterInfo:
    """Which cluster a backend talks to."""

    cluster: str  # the cluster's name ("labkit", "kind-labkit", a kubeconfig cluster entry)
    context: str  # the kubeconfig context the Lab uses
    kubeconfig: Path


class ClusterBackend(abc.ABC):
    """One cluster target. Methods may raise :class:`~labkit.errors.LabError` subclasses only."""

    name: str = ""  # "embedded", "kind" or "kubeconfig"
    has_load_balancer: bool = True  # whether a LoadBalancer Service gets an external address

    @abc.abstractmethod
    def ensure_running(self) -> None:
        """Make sure the cluster answers: start (or create) it when this target can."""

    @abc.abstractmethod
    def describe(self) -> ClusterInfo:
        """The cluster's name, the context to use and the kubeconfig file holding it."""

    @abc.abstractmethod
    def image_builder(self) -> ImageBuilder:
        """The builder whose images this cluster's nodes can run."""

    def check_tag(self, tag: str) -> None:
        """Refuse, before a build starts, a tag this cluster could never run (nothing by default)."""
        return None

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
