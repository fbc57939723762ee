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

from labkit.embedded.images import DEFAULT_PATH, Image
from labkit.embedded.kubelet.runtime import Container, ContainerSpec, StartError
from labkit.embedded.podlogs import LogWriter

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


def _spawn(argv: list[str]) -> tuple[list[str], Callable[[], None] | None]:
    """The command line and preexec_fn that start ``argv`` so that it dies with the daemon."""
    if _SETPRIV is not None:
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv], None
    return argv, _die_with_parent


async def _launch(spec: ContainerSpec, argv: tuple[str, ...], stderr: int) -> asyncio.subprocess.Process:
    """Start ``argv`` in the container's environment, working directory and own session, so that it
    dies with the daemon; a program that cannot be executed is a StartError in runc's wording."""
    command, preexec = _spawn(resolve(argv, spec.image, spec.env, spec.working_dir))
    try:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=spec.working_dir,
            env=spec.env,
            start_new_session=True,
            preexec_fn=preexec,
        )
    except OSError as e:
        raise StartError(f'exec: "{argv[0]}": {(e.strerror or str(e)).lower()}') from None


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

    def __init__(self, spec: ContainerSpec, proc: asyncio.subprocess.Process, log: LogWriter) -> None:
        self.spec = spec
        self.proc = proc
        self.log = log
        self.exit_code: int | None = None
        assert proc.stdout is not None and proc.stderr is not None
        self.pumps = [
            asyncio.get_running_loop().create_task(_pump(proc.stdout, "stdout", log)),
            asyncio.get_running_loop().create_task(_pump(proc.stderr, "stderr", log)),
        ]

    @property
    def pid(self) -> int | None:
        """The main process."""
        return self.proc.pid


async def _pump(stream: asyncio.StreamReader, name: str, log: LogWriter) -> None:
    while data := await stream.read(READ_SIZE):
        log.write(name, data)


def _own(container: Container) -> ProcessContainer:
    if not isinstance(container, ProcessContainer):
        raise TypeError(f"not a process container: {container!r}")
    return container


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class ProcessRuntime:
    """Runs containers as local processes; ``record`` is the node's file of running ones."""

    def __init__(self, record: Path) -> None:
        self.record = record
        self.containers: dict[str, ProcessContainer] = {}

    async def start(self, spec: ContainerSpec) -> ProcessContainer:
        """Start the container's process in its own session, its output going to its log."""
        spec.working_dir.mkdir(parents=True, exist_ok=True)
        proc = await _launch(spec, spec.argv, asyncio.subprocess.PIPE)
        container = ProcessContainer(spec, proc, LogWriter(spec.log))
        self.containers[spec.id] = container
        self._save()
        return container

    async def wait(self, container: Container) -> int:
        """Wait for the main process; then kill what it left behind and finish the log."""
        container = _own(container)
        code = await container.proc.wait()
        if container.exit_code is None:
            container.exit_code = 128 - code if code < 0 else code
            _signal_group(container.proc.pid, signal.SIGKILL)
            _, pending = await asyncio.wait(container.pumps, timeout=1.0)
            for task in pending:
                task.cancel()
            container.log.close()
            self.containers.pop(container.spec.id, None)
            self._save()
        return container.exit_code

    async def stop(self, container: Container, grace: float) -> None:
        """SIGTERM the container's processes, then SIGKILL after ``grace`` seconds."""
        container = _own(container)
        if container.proc.returncode is not None:
            return
        _signal_group(container.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(container.proc.wait(), grace)
        except asyncio.TimeoutError:
            _signal_group(container.proc.pid, signal.SIGKILL)
            await container.proc.wait()

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
        proc = await _launch(spec, tuple(argv), asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout)
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

    def _save(self) -> None:
        entries = {
            cid: {"pid": c.proc.pid, "marks": [f"{k}={c.spec.env.get(k, '')}" for k in MARKS]}
            for cid, c in self.containers.items()
        }
        self.record.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries))
        tmp.replace(self.record)

    def kill_leftovers(self) -> int:
        """Kill what is left of the containers a previous run recorded; how many processes."""
        try:
            entries = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return 0
        sessions = {int(e["pid"]): [m.encode() for m in e.get("marks", [])] for e in entries.values()}
        killed = 0
        for pid, session in _processes():
            marks = sessions.get(session)
            if marks is not None and _environ_has(pid, marks):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        self.record.unlink(missing_ok=True)
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


def _environ_has(pid: int, marks: list[bytes]) -> bool:
    """Whether the process's environment holds all ``marks`` (so a reused pid is left alone)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return all(m in env for m in marks)
