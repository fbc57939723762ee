"""What ``/proc`` tells of this machine's processes: their sessions, process groups and environments.

The process runtime reads it to find a container's processes (whatever groups they moved to)
and, through its journal, what a killed daemon left running.
"""

from __future__ import annotations

from pathlib import Path


def processes() -> list[tuple[int, int]]:
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


def group_of(pid: int) -> int:
    """The process group of ``pid``; -1 when it is gone (or cannot be seen)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[2])


def session_members(session: int) -> list[int]:
    """The processes of a session (an exec'd command and all it started, whatever their
    process groups: an interactive shell gives each job its own)."""
    return [pid for pid, sid in processes() if sid == session]


def environ_has(pid: int, marks: list[bytes]) -> bool:
    """Whether the process's environment holds all ``marks`` (so a reused pid is left alone)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return all(m in env for m in marks)
