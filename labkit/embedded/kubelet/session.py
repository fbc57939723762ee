"""``kubectl exec`` in a running container: the command with pipes or a terminal.

The command runs as the container's own processes do (:func:`labkit.embedded.kubelet.spawn.launch`):
in the container's view of its files, with its environment, working directory, user and
network (the pod IP and ports, through the network shim). With a terminal it gets a
pseudo-terminal as its controlling tty, so shells, line editing and resizes work. When the
session ends, everything the command started is killed: nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import TYPE_CHECKING, Any

from labkit.embedded.kubelet.process import ProcessContainer
from labkit.embedded.kubelet.procfs import session_members
from labkit.embedded.kubelet.runtime import Container, ContainerSpec, StartError
from labkit.embedded.kubelet.signals import exited
from labkit.embedded.kubelet.spawn import launch
from labkit.embedded.kubelet.terminal import Terminal
from labkit.embedded.streaming import StreamError

if TYPE_CHECKING:
    from labkit.embedded.kubelet.kubelet import Kubelet

READ_LIMIT = 64 * 1024  # each output stream buffers at most about this much before the command waits
NOT_FOUND = 127  # as a shell (and docker exec) says of a program it cannot find
NOT_EXECUTABLE = 126


async def _send(stdin: asyncio.StreamWriter | None, data: bytes) -> asyncio.StreamWriter | None:
    """Write to a standard input, waiting while its pipe is full; None once it is gone."""
    if stdin is None or stdin.is_closing():
        return None
    try:
        stdin.write(data)
        await stdin.drain()
    except (ConnectionError, OSError):
        return None
    return stdin


class ExecSession:
    """One command started in a container (see :class:`labkit.embedded.streaming.Session`)."""

    def __init__(self) -> None:
        self.outputs: dict[int, asyncio.StreamReader] = {}
        self.start_error: str | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self._code: int | None = None
        self._stdin: asyncio.StreamWriter | None = None
        self._terminal: Terminal | None = None
        self._closed = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        spec: ContainerSpec,
        argv: list[str],
        *,
        stdin: bool,
        tty: bool,
        isolation: object | None,
        launcher: list[str] | None,
    ) -> ExecSession:
        """Start ``argv`` in the container of ``spec``; a program that cannot be run gives a
        session with :attr:`start_error` set and exit code 126 or 127."""
        session = cls()
        env = dict(spec.env)
        try:
            if tty:
                env.setdefault("TERM", "xterm")
                terminal = session._terminal = Terminal()
                try:
                    session.proc = await launch(
                        spec, tuple(argv), isolation, launcher, stdin=terminal.slave,
                        stdout=terminal.slave, stderr=terminal.slave, env=env, terminal=True,
                    )  # fmt: skip
                finally:
                    await terminal.connect()
                session.outputs = {1: terminal.output}
                if stdin:
                    session._stdin = await terminal.writer()
            else:
                session.proc = await launch(
                    spec, tuple(argv), isolation, launcher,
                    stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
                    limit=READ_LIMIT,
                )  # fmt: skip
                assert session.proc.stdout is not None and session.proc.stderr is not None
                session.outputs = {1: session.proc.stdout, 2: session.proc.stderr}
                session._stdin = session.proc.stdin
        except StartError as e:
            session._failed(str(e))
        return session

    def _failed(self, message: str) -> None:
        """The program could not be started: the session reports it as a runtime would."""
        self.start_error = (
            f"OCI runtime exec failed: exec failed: unable to start container process: {message}: unknown"
        )
        self._code = NOT_FOUND if "not found" in message or "no such file" in message else NOT_EXECUTABLE
        empty = asyncio.StreamReader()
        empty.feed_eof()
        self.outputs = {1: empty}

    # -- the streams -----------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Send bytes to the command's standard input (dropped once the command is gone)."""
        self._stdin = await _send(self._stdin, data)

    def close_stdin(self) -> None:
        """End of file on standard input (with a terminal: the terminal's EOF character)."""
        if self._stdin is None:
            return
        if self._terminal is not None:
            self._terminal.type_eof()
            return
        with contextlib.suppress(OSError, RuntimeError):
            self._stdin.close()
        self._stdin = None

    def resize(self, width: int, height: int) -> None:
        """Set the terminal's size; the command gets SIGWINCH."""
        if self._terminal is not None:
            self._terminal.resize(width, height)

    async def wait(self) -> int:
        """The command's exit code, once it has ended (128 + signal when killed)."""
        if self._code is None:
            assert self.proc is not None
            code = await exited(self.proc)
            self._code = 128 - code if code < 0 else code
        return self._code

    def close(self) -> None:
        """Kill whatever the command started and release the terminal (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        if self.proc is not None and _kill_session(self.proc.pid):
            # a process forked while the first sweep ran (PRoot starts the command a moment
            # after it starts itself) escapes it: sweep again until the session is empty
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(_sweep(self.proc.pid))
        if self._stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._stdin.close()
        if self._terminal is not None:
            self._terminal.close()


def _kill_session(session: int) -> bool:
    """SIGKILL every process of a session; whether there was any."""
    members = session_members(session)
    for pid in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return bool(members)


async def _sweep(session: int, tries: int = 8) -> None:
    """Kill what is left of a session, looking again with growing pauses (about 2.5 s in all)."""
    pause = 0.02
    for _ in range(tries):
        await asyncio.sleep(pause)
        _kill_session(session)
        pause *= 2


ATTACH_BUFFER = 256  # pieces of output held for an attached client that reads slowly


class AttachSession:
    """A client attached to a container's own process (see
    :class:`labkit.embedded.streaming.Session`): its output from now on, its stdin if the
    container keeps one open. Ending the session detaches; it never stops the container."""

    def __init__(self, container: ProcessContainer, stdin: bool) -> None:
        self.container = container
        self.start_error: str | None = None
        self._queues: dict[str, asyncio.Queue[bytes | None]] = {}
        self.outputs: dict[int, asyncio.StreamReader] = {}
        self._feeders: list[asyncio.Task[None]] = []
        streams = ((1, "stdout"),) if container.terminal is not None else ((1, "stdout"), (2, "stderr"))
        for channel, name in streams:
            queue: asyncio.Queue[bytes | None] = asyncio.Queue(ATTACH_BUFFER)
            container.listeners[name].add(queue)
            self._queues[name] = queue
            reader = asyncio.StreamReader()
            self.outputs[channel] = reader
            self._feeders.append(asyncio.ensure_future(_feed(queue, reader)))
        self._stdin = container.stdin if stdin and container.spec.stdin else None
        self._closed = False

    async def write(self, data: bytes) -> None:
        """To the container's standard input (ignored if it has none open)."""
        self._stdin = await _send(self._stdin, data)

    def close_stdin(self) -> None:
        """The client's end of input: closes the container's stdin only with ``stdinOnce``."""
        if self._stdin is not None and self.container.spec.stdin_once:
            if self.container.terminal is not None:
                self.container.terminal.type_eof()
            else:
                with contextlib.suppress(OSError, RuntimeError):
                    self._stdin.close()
        self._stdin = None

    def resize(self, width: int, height: int) -> None:
        """Resize the container's terminal (``tty: true``; without one there is nothing to do)."""
        if self.container.terminal is not None:
            self.container.terminal.resize(width, height)

    async def wait(self) -> int:
        """The container's exit code, once it ends."""
        code = await exited(self.container.proc)
        return 128 - code if code < 0 else code

    def close(self) -> None:
        """Detach (with ``stdinOnce``, that is the end of the container's input)."""
        if self._closed:
            return
        self._closed = True
        for name, queue in self._queues.items():
            self.container.listeners[name].discard(queue)
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self.container.spec.stdin_once:
            self.close_stdin()


async def _feed(queue: asyncio.Queue[bytes | None], reader: asyncio.StreamReader) -> None:
    while (data := await queue.get()) is not None:
        reader.feed_data(data)
    reader.feed_eof()


SIMULATED = (
    "this pod is simulated (labkit.dev/runtime: simulated): it runs no processes, so there is "
    "nothing to exec into or attach to"
)


async def open_exec(
    kubelet: Kubelet, pod: dict[str, Any], container: str, argv: list[str], *, stdin: bool, tty: bool
) -> ExecSession:
    """Start ``argv`` in ``container`` of ``pod`` on this node; raises
    :class:`~labkit.embedded.streaming.StreamError` as kubelet words it when the container
    does not run."""
    running = _running(kubelet, pod, container)
    runtime = kubelet.runtime
    return await ExecSession.open(
        running.spec, argv, stdin=stdin, tty=tty, isolation=runtime.isolation, launcher=runtime.launcher
    )


def _running(kubelet: Kubelet, pod: dict[str, Any], container: str) -> Container:
    uid = str(pod["metadata"].get("uid", ""))
    if uid in kubelet.simulated:
        raise StreamError(SIMULATED)
    worker = kubelet.workers.get(uid)
    runner = next((r for r in worker.running() if r.name == container), None) if worker else None
    if runner is None or runner.container is None:
        raise StreamError(f'container not found ("{container}")', 500)
    return runner.container


class NodeStreams:
    """The nodes' kubelets as the API server's exec and attach reach them
    (:class:`labkit.embedded.streaming.ContainerStreams`)."""

    def __init__(self, kubelets: dict[str, Kubelet]) -> None:
        self.kubelets = kubelets

    def _kubelet(self, pod: dict[str, Any]) -> Kubelet:
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        kubelet = self.kubelets.get(node)
        if kubelet is None:
            raise StreamError(f"pod {pod['metadata']['name']} does not have a host assigned")
        if not kubelet.running:
            raise StreamError(f'error dialing backend: node "{node}" is not running (powered off?)', 502)
        return kubelet

    async def exec(
        self, pod: dict[str, Any], container: str, argv: list[str], *, stdin: bool, tty: bool
    ) -> ExecSession:
        """Run ``argv`` in a running container of ``pod``."""
        return await open_exec(self._kubelet(pod), pod, container, argv, stdin=stdin, tty=tty)

    async def attach(self, pod: dict[str, Any], container: str, *, stdin: bool) -> AttachSession:
        """Reach a running container's own process."""
        running = _running(self._kubelet(pod), pod, container)
        if not isinstance(running, ProcessContainer):
            raise StreamError(f'container not found ("{container}")', 500)
        return AttachSession(running, stdin)
