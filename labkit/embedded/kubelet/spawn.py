"""Starting a container's program: its command line found as runc finds it, in its view or on the host.

Every program starts in a session of its own and dies with the daemon: util-linux's
``setpriv --pdeathsig KILL``, or ``PR_SET_PDEATHSIG`` = SIGKILL set in the child on Linux
without it. A program that cannot be executed is a :class:`StartError` in runc's wording.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from labkit.embedded.kubelet.runtime import ContainerSpec, StartError
from labkit.embedded.runnable_images import DEFAULT_PATH, Image
from labkit.sandbox.isolation import Isolation

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


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
