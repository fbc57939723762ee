"""The process runtime: a container is a local process group, its output a log file.

Each container runs in its own session, so stopping it signals everything it started. On
Linux the main process also gets ``PR_SET_PDEATHSIG`` = SIGKILL, and every running
container is recorded in a small file per node, so that a kubelet starting after its daemon
was killed finds what is left of its pods and kills it: no pod process outlives its cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from labkit.embedded.images import DEFAULT_PATH, Image
from labkit.embedded.kubelet.runtime import Container, ContainerSpec, StartError
from labkit.embedded.kubelet.terminal import Terminal
from labkit.embedded.podlogs import LogWriter
from labkit.sandbox.isolation import Isolation

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
READ_SIZE = 65536
MARKS = ("HOSTNAME", "POD_IP")  # environment entries that tell a pod's processes from others


def _die_with_parent() -> None:
    """In the child before exec: be killed when the daemon dies."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# util-linux's setpriv sets the parent-death signal and execs, so the spawn needs no Python
# preexec_fn: with one, subprocess must fork the whole daemon (about 7 ms each, blocking the
# loop) instead of taking the vfork path (about 0.2 ms).
_SETPRIV = shutil.which("setpriv") if _LIBC is not None else None


def _spawn(argv: list[str], launcher: list[str] | None) -> tuple[list[str], Callable[[], None] | None]:
    """The command line and preexec_fn that start ``argv`` so that it dies with the daemon."""
    if launcher is not None:
        return [*launcher, *argv], None
    if _SETPRIV is not None:
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv], None
    return argv, _die_with_parent


# With a terminal the program starts through util-linux's setsid, inside the view: a session
# of its own there, with the terminal as its controlling tty. (Made the controlling tty before
# bubblewrap instead, its foreground group would lie outside the pod's PID namespace, and an
# interactive shell fails to hand the terminal back: "Cannot set tty process group", exit 2.)
SETSID = "/usr/bin/setsid"


async def launch(
    spec: ContainerSpec,
    argv: tuple[str, ...],
    isolation: Isolation | None = None,
    launcher: list[str] | None = None,
    *,
    stdin: int = asyncio.subprocess.DEVNULL,
    stdout: int = asyncio.subprocess.PIPE,
    stderr: int = asyncio.subprocess.PIPE,
    env: dict[str, str] | None = None,
    terminal: bool = False,
    limit: int = 2**16,
) -> asyncio.subprocess.Process:
    """Start ``argv`` in the container's view (or on the host, without isolation), environment
    and own session, so that it dies with the daemon; a program that cannot be executed is a
    StartError in runc's wording. ``terminal``: stdin is a terminal, which becomes the
    program's controlling tty."""
    tty = [SETSID, "--ctty", "--wait", "--"] if terminal else []
    if spec.view is not None and isolation is not None:
        inside = resolve_inside(argv, spec)
        command, die = _spawn(isolation.command(spec.view, [*tty, *inside]), launcher)
        cwd = spec.view.root
    else:
        command, die = _spawn([*tty, *resolve(argv, spec.image, spec.env, spec.working_dir)], launcher)
        cwd = spec.working_dir
    try:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=spec.env if env is None else env,
            start_new_session=True,
            preexec_fn=die,
            limit=limit,
        )
    except OSError as e:
        raise StartError(f'exec: "{argv[0]}": {(e.strerror or str(e)).lower()}') from None


def resolve_inside(argv: tuple[str, ...], spec: ContainerSpec) -> list[str]:
    """``argv`` with its program found inside the container's view, as runc looks it up;
    raises :class:`StartError` in runc's wording when it is not there."""
    assert spec.view is not None
    if not argv:
        raise StartError("no command specified")
    program = argv[0]
    found = spec.view.which(program, spec.env.get("PATH") or DEFAULT_PATH)
    if found is None:
        if "/" in program:
            raise StartError(f'exec: "{program}": stat {program}: no such file or directory')
        raise StartError(f'exec: "{program}": executable file not found in $PATH')
    return [found, *argv[1:]]


def resolve(argv: tuple[str, ...], image: Image, env: dict[str, str], cwd: Path) -> list[str]:
    """The host command line for a container's ``argv``; raises :class:`StartError` with
    runc's wording when the program does not exist."""
    if not argv:
        raise StartError("no command specified")
    program, rest = argv[0], list(argv[1:])
    if program in image.commands:
        return [*image.commands[program], *rest]
    if "/" in program:
        candidates = []
        if program.startswith("/") and image.root is not None:
            candidates.append(image.root / program.lstrip("/"))
        candidates.append(Path(program) if program.startswith("/") else cwd / program)
        for candidate in candidates:
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return [str(candidate), *rest]
        raise StartError(f'exec: "{program}": stat {program}: no such file or directory')
    dirs = (env.get("PATH") or DEFAULT_PATH).split(":")
    if image.root is not None:
        dirs = [str(image.root / d.lstrip("/")) for d in dirs] + dirs
    found = shutil.which(program, path=os.pathsep.join(dirs))
    if found is None:
        raise StartError(f'exec: "{program}": executable file not found in $PATH')
    return [found, *rest]


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


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _signal_members(group: int, sig: int, skip: frozenset[int] = frozenset()) -> set[int]:
    """Signal the container's processes but not its main one, when that is the isolation
    tool (bubblewrap or PRoot): the tool ends when the app does, and a SIGTERM that killed
    the tool first would cut the app's grace period short. The pids signalled, past ``skip``."""
    signalled: set[int] = set()
    for pid, _session in _processes():
        if pid != group and pid not in skip and _group_of(pid) == group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                signalled.add(pid)
    return signalled


async def _terminate_members(proc: asyncio.subprocess.Process, grace: float) -> bool:
    """SIGTERM an isolated container's processes, also those that appear while it stops (a
    stop that comes as the container starts finds only the tool, which execs the app a moment
    later); whether the main process ended within ``grace`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    ended = asyncio.ensure_future(exited(proc))
    signalled: set[int] = set()
    pause = 0.05
    try:
        while True:
            signalled |= _signal_members(proc.pid, signal.SIGTERM, frozenset(signalled))
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            done, _ = await asyncio.wait({ended}, timeout=min(remaining, pause))
            if done:
                return True
            pause = min(pause * 2, 1.0)  # the race is in the first moments; then look rarely
    finally:
        ended.cancel()


def _group_of(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[2])


async def exited(proc: asyncio.subprocess.Process) -> int:
    """Wait for the main process to end (even while processes it left hold its output open,
    which keeps ``proc.wait()`` waiting); its return code."""
    if proc.returncode is not None:
        return proc.returncode
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return await proc.wait()
    ended = loop.create_future()
    loop.add_reader(fd, lambda: ended.done() or ended.set_result(None))
    try:
        await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    while proc.returncode is None:  # the child watcher reaps it a moment later
        await asyncio.sleep(0.002)
    return proc.returncode


class ProcessRuntime:
    """Runs containers as local processes; ``record`` is the node's file of running ones."""

    def __init__(
        self, record: Path, isolation: Isolation | None = None, launcher: list[str] | None = None
    ) -> None:
        self.record = record
        self.isolation = isolation
        self.launcher = launcher
        self.containers: dict[str, ProcessContainer] = {}
        self._journal: TextIO | None = None
        self._lines = 0

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
        self._save(spec.id, container)
        return container

    async def wait(self, container: Container) -> int:
        """Wait for the main process; then kill what it left behind and finish the log."""
        container = _own(container)
        code = await exited(container.proc)
        if container.exit_code is None:
            container.exit_code = 128 - code if code < 0 else code
            _signal_group(container.proc.pid, signal.SIGKILL)
            _, pending = await asyncio.wait(container.pumps, timeout=1.0)
            for task in pending:
                task.cancel()
            container.log.close()
            if container.terminal is not None:
                container.terminal.close()
            self.containers.pop(container.spec.id, None)
            self._save(container.spec.id, None)
        return container.exit_code

    async def stop(self, container: Container, grace: float) -> None:
        """SIGTERM the container's processes, then SIGKILL after ``grace`` seconds."""
        container = _own(container)
        if container.proc.returncode is not None:
            return
        if container.spec.view is not None and self.isolation is not None:
            if await _terminate_members(container.proc, grace):
                return
        else:
            _signal_group(container.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(exited(container.proc), grace)
                return
            except asyncio.TimeoutError:
                pass
        _signal_group(container.proc.pid, signal.SIGKILL)
        await exited(container.proc)

    def kill(self, container: Container) -> None:
        """SIGKILL the container's processes."""
        _signal_group(_own(container).proc.pid, signal.SIGKILL)

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
            _signal_group(proc.pid, signal.SIGKILL)  # what the command left behind
        except asyncio.TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise TimeoutError(f"command {argv!r} timed out") from None
        code = proc.returncode or 0
        return (128 - code if code < 0 else code), output

    def log_tail(self, container: Container) -> str:
        """The last lines of the container's output."""
        return _own(container).log.tail_text()

    # -- the record of running containers ------------------------------------------------
    # An append-only journal, one JSON line per start ("+") and end ("-"), so that recording
    # a container costs the same however many run; it is rewritten whole only when ended
    # entries outnumber the live ones.

    def _save(self, cid: str, container: ProcessContainer | None) -> None:
        if container is not None:
            marks = [f"{k}={container.spec.env.get(k, '')}" for k in MARKS]
            line = {"op": "+", "id": cid, "pid": container.proc.pid, "marks": marks}
        else:
            line = {"op": "-", "id": cid}
        if self._journal is None:
            self.record.parent.mkdir(parents=True, exist_ok=True)
            self._journal = open(self.record, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._journal.write(json.dumps(line) + "\n")
        self._journal.flush()
        self._lines += 1
        if self._lines > 64 and self._lines > 4 * len(self.containers):
            self._compact()

    def _compact(self) -> None:
        tmp = self.record.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            for cid, c in self.containers.items():
                marks = [f"{k}={c.spec.env.get(k, '')}" for k in MARKS]
                out.write(json.dumps({"op": "+", "id": cid, "pid": c.proc.pid, "marks": marks}) + "\n")
        tmp.replace(self.record)
        if self._journal is not None:
            self._journal.close()
        self._journal = open(self.record, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._lines = len(self.containers)

    def _recorded(self) -> dict[str, dict[str, object]]:
        entries: dict[str, dict[str, object]] = {}
        try:
            text = self.record.read_text(encoding="utf-8")
        except OSError:
            return entries
        for raw in text.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # a line cut short by a kill
            if line.get("op") == "+":
                entries[str(line["id"])] = line
            else:
                entries.pop(str(line.get("id")), None)
        return entries

    def kill_leftovers(self) -> int:
        """Kill what is left of the containers a previous run recorded; how many processes."""
        entries = self._recorded()
        sessions = {int(e["pid"]): [str(m).encode() for m in e.get("marks", [])] for e in entries.values()}
        killed = 0
        for pid, session in _processes() if sessions else []:
            marks = sessions.get(session)
            if marks is not None and _environ_has(pid, marks):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        self.record.unlink(missing_ok=True)
        self._lines = 0
        return killed


def _processes() -> list[tuple[int, int]]:
    """(pid, session id) of every process we can see."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found.append((int(entry.name), int(fields[3])))
    return found


def session_members(session: int) -> list[int]:
    """The processes of a session (an exec'd command and all it started, whatever their
    process groups: an interactive shell gives each job its own)."""
    return [pid for pid, sid in _processes() if sid == session]


def _environ_has(pid: int, marks: list[bytes]) -> bool:
    """Whether the process's environment holds all ``marks`` (so a reused pid is left alone)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return all(m in env for m in marks)
