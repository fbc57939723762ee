"""What the API server's streaming subresources (exec, attach, port-forward) ask of the nodes.

The API server speaks the wire protocols (:mod:`labkit.embedded.apiserver.channels`,
:mod:`labkit.embedded.apiserver.spdy`); the kubelet runs the commands. This bottom module is
all the two share, so that neither imports the other.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class StreamError(Exception):
    """A session could not be opened; ``code`` is the HTTP status kube-apiserver answers with."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


class Session(Protocol):
    """A command (exec) or a container's own process (attach) with its streams.

    ``outputs`` are the readable streams by channel number (1 stdout, 2 stderr; with a
    terminal only 1). ``start_error`` is the runtime's message when the command could not be
    started at all (the session then has no process and :meth:`wait` gives its exit code).
    """

    outputs: dict[int, asyncio.StreamReader]
    start_error: str | None

    async def write(self, data: bytes) -> None:
        """Send bytes to the command's standard input (ignored once it is closed)."""

    def close_stdin(self) -> None:
        """Close the command's standard input (end of file)."""

    def resize(self, width: int, height: int) -> None:
        """Set the terminal's size (no-op without one)."""

    async def wait(self) -> int:
        """Wait for the command to end: its exit code (128 + signal when killed)."""

    def close(self) -> None:
        """End the session: kill what the command started, if it still runs (idempotent)."""


class ContainerStreams(Protocol):
    """The nodes, as the streaming subresources reach them."""

    async def exec(
        self, pod: dict[str, Any], container: str, argv: list[str], *, stdin: bool, tty: bool
    ) -> Session:
        """Run ``argv`` in a running container of ``pod``; raises :class:`StreamError`."""

    async def attach(self, pod: dict[str, Any], container: str, *, stdin: bool) -> Session:
        """Reach a running container's own process; raises :class:`StreamError`."""
