"""Ending a container's processes: signals to its process group or to its members, and waiting
for its main process to exit.

A container runs in its own session, so signalling its group reaches everything it started.
Under an isolation tool (bubblewrap or PRoot) the main process is the tool, which is left to
end with the app rather than signalled first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from labkit.embedded.kubelet.procfs import group_of, processes


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pid`` leads, if it is still there."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def signal_members(group: int, sig: int, skip: frozenset[int] = frozenset()) -> set[int]:
    """Signal the container's processes but not its main one, when that is the isolation
    tool (bubblewrap or PRoot): the tool ends when the app does, and a SIGTERM that killed
    the tool first would cut the app's grace period short. The pids signalled, past ``skip``."""
    signalled: set[int] = set()
    for pid, _session in processes():
        if pid != group and pid not in skip and group_of(pid) == group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                signalled.add(pid)
    return signalled


async def terminate_members(proc: asyncio.subprocess.Process, grace: float) -> bool:
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
            signalled |= signal_members(proc.pid, signal.SIGTERM, frozenset(signalled))
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            done, _ = await asyncio.wait({ended}, timeout=min(remaining, pause))
            if done:
                return True
            pause = min(pause * 2, 1.0)  # the race is in the first moments; then look rarely
    finally:
        ended.cancel()


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
