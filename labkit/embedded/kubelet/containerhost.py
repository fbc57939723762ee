"""What the parts of a container's life need of the runner that drives it.

The image pull (``imagepull``), the working out of a run (``runspec``) and the probes
(``probing``) see their :class:`~labkit.embedded.kubelet.container.ContainerRunner` as a
:class:`ContainerHost`, so they never import ``container.py`` back, even for type checking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from labkit.embedded.kubelet.host import PodHost
from labkit.embedded.kubelet.runtime import Container
from labkit.embedded.kubelet.status import ContainerRecord


class ContainerHost(Protocol):
    """One container's runner, as its image pull, its runs' configuration and its probes see it."""

    worker: PodHost
    spec: dict[str, Any]  # the container as the pod's spec gives it
    record: ContainerRecord
    name: str
    next_run: int  # the restartCount of the next run, which numbers its log
    container: Container | None  # the running container, if one runs
    killed_by_probe: bool
    termination_log: Path | None  # the run's terminationMessagePath, on the host

    @property
    def key(self) -> str:
        """The back-off key (pod UID and container name)."""
        ...

    def event(self, kind: str, reason: str, message: str) -> None:
        """An event about this container."""
        ...

    async def sleep(self, seconds: float) -> bool:
        """Sleep; True if woken early because the pod is being deleted or the container was
        redefined."""
        ...
