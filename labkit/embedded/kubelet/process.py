"""The process runtime: a container is a local process group, its output a log file.

Each container runs in its own session (:mod:`~labkit.embedded.kubelet.spawn`), so stopping it
signals everything it started (:mod:`~labkit.embedded.kubelet.signals`). Its main process dies
with the daemon, and every running container is recorded in a small file per node
(:mod:`~labkit.embedded.kubelet.journal`), so that a kubelet starting after its daemon was
killed finds what is left of its pods and kills it: no pod process outlives its cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from labkit.embedded.kubelet.journal import Journal
from labkit.embedded.kubelet.runtime import Container, ContainerSpec, StartError
from labkit.embedded.kubelet.signals import exited, signal_group, terminate_members
from labkit.embedded.kubelet.spawn import launch
from labkit.embedded.kubelet.terminal import Terminal
from labkit.embedded.podlogs import LogWriter
from labkit.sandbox.isolation import Isolation

READ_SIZE = 65536


class ProcessContainer:
    """A running container: its process, output pumps and log."""

    def __init__(
        self,
        spec: ContainerSpec,
        proc: asyncio.subprocess.Process,
        log: LogWriter,
        terminal: Terminal | None = None,
        stdin: asyncio.StreamWriter | None = None,
    ) -> None:
        self.spec = spec
        self.proc = proc
        self.log = log
        self.exit_code: int | None = None
        self.terminal = terminal  # tty: true
        self.stdin = stdin if terminal is not None else proc.stdin  # open while the spec says stdin
        # attached clients (kubectl attach): a queue per client and stream, fed as the log is
        self.listeners: dict[str, set[asyncio.Queue[bytes | None]]] = {"stdout": set(), "stderr": set()}
        if terminal is not None:
            outputs = {"stdout": terminal.output}
        else:
            assert proc.stdout is not None and proc.stderr is not None
            outputs = {"stdout": proc.stdout, "stderr": proc.stderr}
        loop = asyncio.get_running_loop()
        self.pumps = [
            loop.create_task(_pump(reader, name, log, self.listeners[name]))
            for name, reader in outputs.items()
        ]

    @property
    def pid(self) -> int | None:
        """The main process."""
        return self.proc.pid


async def _pump(
    stream: asyncio.StreamReader, name: str, log: LogWriter, listeners: set[asyncio.Queue[bytes | None]]
) -> None:
    """The container's output to its log, and to attached clients (a client that does not keep
    up loses output rather than stall the container, whose log keeps everything)."""
    while data := await stream.read(READ_SIZE):
        log.write(name, data)
        for queue in list(listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(data)
    for queue in list(listeners):
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)


def _own(container: Container) -> ProcessContainer:
    if not isinstance(container, ProcessContainer):
        raise TypeError(f"not a process container: {container!r}")
    return container


class ProcessRuntime:
    """Runs containers as local processes; ``record`` is the node's file of running ones."""

    def __init__(
        self, record: Path, isolation: Isolation | None = None, launcher: list[str] | None = None
    ) -> None:
        self.record = record
        self.isolation = isolation
        self.launcher = launcher
        self.containers: dict[str, ProcessContainer] = {}
        self.journal = Journal(record, self.containers)

    async def start(self, spec: ContainerSpec) -> ProcessContainer:
        """Start the container's process in its own session, its output going to its log."""
        spec.working_dir.mkdir(parents=True, exist_ok=True)
        if spec.tty:
            terminal = Terminal()
            env = {**spec.env, "TERM": spec.env.get("TERM", "xterm")}
            try:
                proc = await launch(
                    spec, spec.argv, self.isolation, self.launcher, stdin=terminal.slave,
                    stdout=terminal.slave, stderr=terminal.slave, env=env, terminal=True,
                )  # fmt: skip
            except StartError:
                terminal.close()
                raise
            await terminal.connect()
            writer = await terminal.writer() if spec.stdin else None
            container = ProcessContainer(spec, proc, LogWriter(spec.log), terminal, writer)
        else:
            stdin = asyncio.subprocess.PIPE if spec.stdin else asyncio.subprocess.DEVNULL
            proc = await launch(spec, spec.argv, self.isolation, self.launcher, stdin=stdin)
            container = ProcessContainer(spec, proc, LogWriter(spec.log))
        self.containers[spec.id] = container
        self.journal.save(spec.id, container)
        return container

    async def wait(self, container: Container) -> int:
        """Wait for the main process; then kill what it left behind and finish the log."""
        container = _own(container)
        code = await exited(container.proc)
        if container.exit_code is None:
            container.exit_code = 128 - code if code < 0 else code
            signal_group(container.proc.pid, signal.SIGKILL)
            _, pending = await asyncio.wait(container.pumps, timeout=1.0)
            for task in pending:
                task.cancel()
            container.log.close()
            if container.terminal is not None:
                container.terminal.close()
            self.containers.pop(container.spec.id, None)
            self.journal.save(container.spec.id, None)
        return container.exit_code

    async def stop(self, container: Container, grace: float) -> None:
        """SIGTERM the container's processes, then SIGKILL after ``grace`` seconds."""
        container = _own(container)
        if container.proc.returncode is not None:
            return
        if container.spec.view is not None and self.isolation is not None:
            if await terminate_members(container.proc, grace):
                return
        else:
            signal_group(container.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(exited(container.proc), grace)
                return
            except asyncio.TimeoutError:
                pass
        signal_group(container.proc.pid, signal.SIGKILL)
        await exited(container.proc)

    def kill(self, container: Container) -> None:
        """SIGKILL the container's processes."""
        signal_group(_own(container).proc.pid, signal.SIGKILL)

    def kill_all(self) -> None:
        """SIGKILL every container at once."""
        for container in list(self.containers.values()):
            self.kill(container)

    async def exec(self, container: Container, argv: list[str], timeout: float) -> tuple[int, bytes]:
        """Run a command with the container's environment and working directory."""
        spec = container.spec
        merged = asyncio.subprocess.STDOUT
        proc = await launch(spec, tuple(argv), self.isolation, self.launcher, stderr=merged)
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout)
            signal_group(proc.pid, signal.SIGKILL)  # what the command left behind
        except asyncio.TimeoutError:
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise TimeoutError(f"command {argv!r} timed out") from None
        code = proc.returncode or 0
        return (128 - code if code < 0 else code), output

    def log_tail(self, container: Container) -> str:
        """The last lines of the container's output."""
        return _own(container).log.tail_text()

    def kill_leftovers(self) -> int:
        """Kill what is left of the containers a previous run recorded; how many processes."""
        return self.journal.kill_leftovers()
