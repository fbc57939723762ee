"""Choosing a cluster target: which :class:`~labkit.clusters.base.ClusterBackend` a Lab gets.

``detect("auto")`` takes the target the user configured (``%config Lab.target``, else the
``LABKIT_TARGET`` environment variable) and falls back to the embedded cluster, which needs
nothing installed.
"""

from __future__ import annotations

import os

from labkit.clusters.base import ClusterBackend
from labkit.clusters.embedded import DEFAULT_NAME, EmbeddedBackend
from labkit.config import TARGETS, settings
from labkit.errors import UsageError

ENV_TARGET = "LABKIT_TARGET"


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
