"""What every control loop of a running cluster shares: the registry, the configuration, the state."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.events import EventRecorder
from labkit.embedded.state import ClusterConfig, ClusterDir
from labkit.embedded.store import Store


@dataclass
class ClusterContext:
    """Handed to controllers, the scheduler and kubelets."""

    registry: Registry
    config: ClusterConfig
    state: ClusterDir
    random: random.Random = field(default_factory=random.Random)
    _recorders: dict[tuple[str, str], EventRecorder] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        """The object store (read it; write through the registry)."""
        return self.registry.store

    def recorder(self, component: str, host: str = "") -> EventRecorder:
        """The event recorder of one component (on one host)."""
        key = (component, host)
        if key not in self._recorders:
            self._recorders[key] = EventRecorder(self.registry, component, host)
        return self._recorders[key]

    def event(
        self,
        obj: dict[str, Any],
        component: str,
        kind: str,
        reason: str,
        message: str,
        host: str = "",
        field_path: str = "",
    ) -> None:
        """Record an event about ``obj`` as ``component``."""
        self.recorder(component, host).record(obj, kind, reason, message, field_path=field_path)
