"""A container's termination message file: what it writes at its ``terminationMessagePath``.

Each run gets an empty file of its own on the host, mounted where the container expects it;
when the run ends its first 4 KiB become the terminated state's message.
"""

from __future__ import annotations

from pathlib import Path

TERMINATION_LOG = "/dev/termination-log"  # upstream's default terminationMessagePath
TERMINATION_LIMIT = 4096  # upstream keeps at most 4 KiB of a termination message


def termination_log(base: Path, run: int) -> Path:
    """An empty file for one run's termination message, which the container sees at its
    terminationMessagePath."""
    path = base / f"{run}.termination-log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def read_termination_log(path: Path | None) -> str:
    """What the container wrote to its termination message file (at most 4 KiB)."""
    if path is None:
        return ""
    try:
        with path.open("rb") as f:
            return f.read(TERMINATION_LIMIT).decode(errors="replace")
    except OSError:
        return ""
