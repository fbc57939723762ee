"""The Docker Engine as labkit sees it: connecting, errors, and containers for a quick check.

Every call into the docker SDK goes through :func:`converted`, so ``docker.errors`` and the
connection errors under them become labkit's errors (with a hint) in one place. Containers
run on the host network only: no bridge exists where labkit starts dockerd, and a server in
the container is reached on 127.0.0.1 at the port given in its ``PORT`` variable.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import NoReturn

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from labkit.errors import ContainerError, EngineError, LabError

OWNER_LABEL = "dev.labkit.owner"  # on every container labkit starts: the pid that started it
EMBEDDED_HINT = "or build with labkit's embedded builder, which needs no Docker Engine"


def engine_address() -> str:
    """Where the docker SDK looks for the engine: DOCKER_HOST, or the default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def unreachable(cause: BaseException) -> EngineError:
    """The error for an engine that does not answer."""
    return EngineError(
        f"Cannot reach the Docker Engine at {engine_address()}: {_reason(cause)}",
        hint=f"Is Docker running? Start it (as root in this repository: `bash .ci/docker`), {EMBEDDED_HINT}.",
    )


def convert(err: BaseException) -> LabError:
    """The labkit error for an error the docker SDK raised."""
    if isinstance(err, docker.errors.ImageNotFound):
        return ContainerError(
            f"No such image here: {_reason(err)}",
            hint="Build it first (or check the tag with `docker images`); labkit never pulls to run.",
        )
    if isinstance(err, docker.errors.APIError):
        return EngineError(
            f"The Docker Engine refused the request: {_reason(err)}",
            hint="The engine's message above says why.",
        )
    return unreachable(err)


@contextlib.contextmanager
def converted() -> Iterator[None]:
    """Run docker SDK calls, turning their errors into labkit's errors (once, here)."""
    try:
        yield
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as err:
        raise convert(err) from err


def connect(timeout: float = 60.0) -> docker.DockerClient:
    """A client for the engine that DOCKER_HOST names (else the default socket), checked with a ping."""
    with converted():
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    return client


def engine_available(timeout: float = 3.0) -> bool:
    """True when a Docker Engine answers: for choosing between the Docker and embedded builders."""
    try:
        connect(timeout).close()
    except LabError:
        return False
    return True


def _reason(err: BaseException) -> str:
    """The useful part of an SDK error's text."""
    if isinstance(err, docker.errors.APIError) and err.explanation:
        return str(err.explanation)
    return str(err) or type(err).__name__


@dataclass
class RunningContainer:
    """A container started for a quick check. It is stopped and removed when its runner closes."""

    id: str
    name: str
    image: str
    port: int | None
    _runner: DockerRunner = field(repr=False)

    @property
    def url(self) -> str:
        """Where its server answers on the host network (needs a port)."""
        if self.port is None:
            raise ContainerError(f"Container {self.name} was started without a port", hint="Pass port=.")
        return f"http://127.0.0.1:{self.port}/"

    def status(self) -> str:
        """The engine's state for it: "running", "exited", ... or "removed"."""
        return self._runner.status(self.id)

    def logs(self) -> str:
        """Everything it printed so far (stdout and stderr)."""
        return self._runner.logs(self.id)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait until it exits (a one-off command) and return its exit code."""
        return self._runner.wait(self.id, timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``timeout`` seconds) and remove it."""
        self._runner.stop(self.id, timeout)


class DockerRunner:
    """Starts containers on the host network and removes them all on close() or at exit."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._started: dict[str, Container] = {}
        atexit.register(self.close)

    def run(
        self,
        image: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        command: str | Sequence[str] | None = None,
        name: str | None = None,
        ready_timeout: float = 10.0,
    ) -> RunningContainer:
        """Start ``image`` on the host network with ``PORT`` set; with a port, wait until it answers.

        Raises ContainerError when the image is not here, the port is taken, or the
        container exits (or stays silent) before it accepts a connection on the port.
        """
        if port is not None:
            _check_port_free(port)
        environment = {**(env or {}), **({"PORT": str(port)} if port is not None else {})}
        with converted():
            container = self._client.containers.create(
                image,
                command=list(command)
                if isinstance(command, Sequence) and not isinstance(command, str)
                else command,
                environment=environment,
                name=name,
                network_mode="host",
                labels={OWNER_LABEL: str(os.getpid())},
                detach=True,
            )
            self._started[container.id] = container
            container.start()
            container.reload()
        handle = RunningContainer(container.id, container.name, image, port, self)
        if port is not None:
            self._wait_ready(handle, port, ready_timeout)
        return handle

    def status(self, container_id: str) -> str:
        """The engine's state of a container this runner started."""
        container = self._started.get(container_id)
        if container is None:
            return "removed"
        with converted():
            container.reload()
        return str(container.status)

    def logs(self, container_id: str) -> str:
        """What a container this runner started printed so far."""
        container = self._known(container_id)
        with converted():
            return container.logs(stdout=True, stderr=True).decode(errors="replace")

    def wait(self, container_id: str, timeout: float = 10.0) -> int:
        """Wait until a container this runner started exits; its exit code."""
        container = self._known(container_id)
        with converted():
            try:
                return int(container.wait(timeout=timeout)["StatusCode"])
            except requests.exceptions.RequestException:
                if self.status(container_id) != "running":
                    raise
        raise ContainerError(
            f"Container {container.name} still runs after {timeout:g} s",
            hint="wait() is for one-off commands; stop() ends a server.",
        )

    def stop(self, container_id: str, timeout: float = 2.0) -> None:
        """Stop and remove a container this runner started (once; later calls do nothing)."""
        container = self._started.pop(container_id, None)
        if container is None:
            return
        with converted():
            with contextlib.suppress(docker.errors.NotFound):
                container.stop(timeout=max(0, round(timeout)))
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)

    def close(self) -> None:
        """Remove every container this runner started (killed, no grace period); safe to repeat."""
        atexit.unregister(self.close)
        for container_id in list(self._started):
            container = self._started.pop(container_id)
            with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                container.remove(force=True)

    def __enter__(self) -> DockerRunner:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _known(self, container_id: str) -> Container:
        """A container this runner started and has not removed."""
        container = self._started.get(container_id)
        if container is None:
            raise ContainerError(
                f"Container {container_id[:12]} was stopped and removed; its logs went with it",
                hint="Read logs() before stop().",
            )
        return container

    def _wait_ready(self, handle: RunningContainer, port: int, timeout: float) -> None:
        """Wait until the container accepts a TCP connection on its port; else remove it and raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _accepts(port):
                return
            state = self.status(handle.id)
            if state not in ("created", "running"):
                self._fail(handle, f"exited ({state}) before it answered on port {port}")
            time.sleep(0.05)
        self._fail(handle, f"did not answer on port {port} within {timeout:g} s")

    def _fail(self, handle: RunningContainer, what: str) -> NoReturn:
        """Remove a container that did not come up, and raise with what it printed."""
        logs = self.logs(handle.id).strip()
        exit_code = self._started[handle.id].attrs.get("State", {}).get("ExitCode")
        self.stop(handle.id, timeout=0)
        printed = f"\n--- it printed ---\n{logs}" if logs else " (it printed nothing)"
        code = f", exit code {exit_code}" if exit_code else ""
        raise ContainerError(
            f"Container from {handle.image} {what}{code}{printed}",
            hint="Its server must listen on 0.0.0.0 or 127.0.0.1 at the port in $PORT.",
        )


def _accepts(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _check_port_free(port: int) -> None:
    """Refuse a port that is out of range or already taken on 127.0.0.1."""
    if not 1 <= port <= 65535:
        raise ContainerError(f"port {port} is not a TCP port", hint="Use a number from 1024 to 65535.")
    if _accepts(port):
        raise ContainerError(
            f"port {port} is already in use on this machine",
            hint="Containers share the host network here: pick another port, or stop what uses it.",
        )
