"""Choosing a cluster target, and the embedded cluster as a :class:`ClusterBackend`.

``detect("auto")`` takes the target the user configured (``%config Lab.target``, else the
``LABKIT_TARGET`` environment variable) and falls back to the embedded cluster, which needs
nothing installed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from labkit.clusters.base import ClusterBackend, ClusterInfo
from labkit.clusters.embedded import DEFAULT_NAME, EmbeddedCluster
from labkit.config import TARGETS, settings
from labkit.errors import UsageError
from labkit.images.models import BuildResult, ProgressCallback

ENV_TARGET = "LABKIT_TARGET"
EMBEDDED_NODES = 3  # a control plane and two workers, as the kind target


class EmbeddedBackend(ClusterBackend):
    """labkit's own cluster: started on first use, reused while it runs."""

    name = "embedded"
    builder = "embedded"

    def __init__(self, cluster: str = DEFAULT_NAME) -> None:
        self.cluster = EmbeddedCluster(cluster)

    def ensure_running(self) -> None:
        """Start the cluster unless it runs (the Lab's balancing and seed apply to a new start)."""
        config = settings()
        self.cluster.up(nodes=None if self.cluster.dir.exists() else EMBEDDED_NODES,
                        balancing=config.balancing, seed=config.seed)  # fmt: skip

    def describe(self) -> ClusterInfo:
        """The cluster's name, its context and its kubeconfig under ``$LABKIT_HOME``."""
        return ClusterInfo(self.cluster.name, self.cluster.dir.context, self.cluster.dir.kubeconfig)

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
        """Build with labkit's embedded builder into the store the cluster's kubelets read."""
        from labkit.images import embedded_builder

        with tempfile.TemporaryDirectory(prefix="labkit-context-") as empty:
            return embedded_builder.build(
                context if context is not None else Path(empty),
                tag,
                dockerfile_text=dockerfile,
                build_args=dict(build_args or {}),
                no_cache=no_cache,
                progress=progress,
                home=self.cluster.home,
            )

    def load_image(self, tag: str) -> None:
        """Nothing to do: the kubelets read the same image store the builder writes."""

    def supports_node_power(self) -> bool:
        """Embedded nodes can be powered off and on."""
        return True

    def set_node_power(self, node: str, on: bool) -> None:
        """Power a node off (its pods' containers die) or on (waits until it is Ready)."""
        self.cluster.set_node_power(node, on)


def configured_target() -> str:
    """The target "auto" stands for: ``%config Lab.target``, else ``$LABKIT_TARGET``, else embedded."""
    configured = settings().target
    if configured != "auto":
        return configured
    env = os.environ.get(ENV_TARGET, "").strip().lower()
    if env and env != "auto":
        if env not in TARGETS:
            raise UsageError(
                f"{ENV_TARGET}={env!r} is not a target labkit knows",
                f"set it to one of: {', '.join(t for t in TARGETS if t != 'auto')}",
            )
        return env
    return "embedded"


def detect(target: str = "auto", context: str | None = None) -> ClusterBackend:
    """The backend for ``target`` ("auto", "embedded", "kind" or "kubeconfig"), not yet started.

    ``context`` names the kubeconfig context for the kubeconfig target, or the kind cluster's
    name for kind (default "labkit")."""
    chosen = configured_target() if target == "auto" else target
    if chosen == "embedded":
        return EmbeddedBackend()
    if chosen == "kind":
        from labkit.clusters.kind import KindBackend

        return KindBackend(context.removeprefix("kind-") if context else DEFAULT_NAME)
    if chosen == "kubeconfig":
        from labkit.clusters.kubeconfig import KubeconfigBackend

        return KubeconfigBackend(context)
    raise UsageError(
        f"unknown target {target!r}",
        f"choose one of: {', '.join(TARGETS)}",
    )
