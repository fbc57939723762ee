"""What a container runtime does for the kubelet: start, wait for, stop and exec into containers.

The kubelet works out everything about a container (its command, environment, working
directory, log file) into a :class:`ContainerSpec`; a runtime only runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from labkit.embedded.runnable_images import Image
from labkit.sandbox.view import View


@dataclass(frozen=True)
class ContainerSpec:
    """One run of one container, fully worked out."""

    id: str  # 64 hex digits; the status shows "labkit://<id>"
    namespace: str
    pod: str
    pod_uid: str
    name: str
    image: Image
    argv: tuple[str, ...]  # entrypoint and cmd after the pod's command and args
    env: dict[str, str]
    working_dir: Path  # on the host: the view's working directory, or the process's own
    log: Path
    view: View | None = None  # what the process sees; None: the host as it is (no isolation)
    stdin: bool = False  # the container's ``stdin: true``: its standard input stays open for attach
    stdin_once: bool = False  # ``stdinOnce``: the first attach that ends closes it
    tty: bool = False  # ``tty: true``: the process runs on a pseudo-terminal (its log gets what it shows)


class StartError(Exception):
    """The container could not be started (its message is the runtime's, as containerd words it)."""


class Container(Protocol):
    """A started container."""

    spec: ContainerSpec

    @property
    def pid(self) -> int | None:
        """The main process, if the runtime has one."""
        ...


class Runtime(Protocol):
    """Runs containers."""

    async def start(self, spec: ContainerSpec) -> Container:
        """Start a container; raises :class:`StartError`."""
        ...

    async def wait(self, container: Container) -> int:
        """Wait for the container to end; its exit code (128 + signal when killed)."""
        ...

    async def stop(self, container: Container, grace: float) -> None:
        """SIGTERM, up to ``grace`` seconds, then SIGKILL."""
        ...

    def kill(self, container: Container) -> None:
        """SIGKILL at once."""
        ...

    async def exec(self, container: Container, argv: list[str], timeout: float) -> tuple[int, bytes]:
        """Run a command in the container (for exec probes): exit code and output.
        Raises :class:`TimeoutError` after ``timeout`` seconds and :class:`StartError` when the
        command cannot be run."""
        ...

    def log_tail(self, container: Container) -> str:
        """The last lines of the container's output (for termination messages)."""
        ...
