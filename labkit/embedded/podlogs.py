"""Container logs on disk, laid out as kubelet lays out ``/var/log/pods``.

``<pods_dir>/<namespace>_<pod>_<uid>/<container>/<n>.log`` holds the output of the ``n``-th
run of a container (``n`` is its restartCount then). Each line is in the CRI log format:
``<RFC 3339 time with nanoseconds> <stdout|stderr> <F|P> <text>`` (``P`` marks a partial line).
A file that grows past :data:`MAX_FILE_BYTES` is rotated once to ``<n>.log.1``; a finished run
leaves a ``<n>.done`` marker so that followers stop.

:class:`LogWriter` writes one run's log; :class:`PodLogs` answers ``kubectl logs`` (tail,
since, timestamps, limit, previous, follow) from the pod's status, with upstream's messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

MAX_FILE_BYTES = 10 * 1024 * 1024  # kubelet's containerLogMaxSize
MAX_LINE_BYTES = 16 * 1024  # longer lines are split into partial (P) lines, as containerd does
KEEP_RUNS = 5  # log files kept per container
FOLLOW_POLL = 0.1


def pod_dir(pods_dir: Path, namespace: str, name: str, uid: str) -> Path:
    """The directory of one pod's logs and working directories."""
    return pods_dir / f"{namespace}_{name}_{uid}"


def container_id(uid: str, container: str, run: int) -> str:
    """The ID of run ``run`` of a container: 64 hex digits, stable, so its log can be found."""
    return hashlib.sha256(f"{uid}/{container}/{run}".encode()).hexdigest()


def timestamp(when: datetime | None = None) -> str:
    """``2026-11-25T08:01:17.123456000Z``: kubelet's fixed-width RFC 3339 with nanoseconds."""
    when = when or datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _open_private(path: Path) -> BinaryIO:
    """Open a log file for appending, readable by its owner only (logs may hold secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "ab", buffering=0)


class LogWriter:
    """Writes one container run's output, a timestamp per line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self._file = _open_private(path)
        self._size = path.stat().st_size
        self._partial: dict[str, bytes] = {}
        self._prune(path.parent)

    def write(self, stream: str, data: bytes) -> None:
        """Write output of ``stream`` (``stdout`` or ``stderr``); an incomplete last line waits."""
        buffered = self._partial.pop(stream, b"") + data
        lines = buffered.split(b"\n")
        rest = lines.pop()
        out = [self._line(stream, b"F", line) for line in lines]
        while len(rest) > MAX_LINE_BYTES:
            out.append(self._line(stream, b"P", rest[:MAX_LINE_BYTES]))
            rest = rest[MAX_LINE_BYTES:]
        if rest:
            self._partial[stream] = rest
        if out:
            self._append(b"".join(out))

    def close(self) -> None:
        """Write what is left and mark the run finished."""
        for stream, rest in self._partial.items():
            self._append(self._line(stream, b"F", rest))
        self._partial.clear()
        self._file.close()
        try:
            self.path.with_suffix(".done").touch()
        except OSError:
            pass  # the pod's files were removed already

    def tail_text(self, lines: int = 80, limit: int = 2048) -> str:
        """The last lines of this run's output (without timestamps), at most ``limit`` bytes."""
        try:
            raw = self.path.read_bytes()[-(limit * 4) :]
        except OSError:
            return ""
        text = b"".join(_content(line) for line in raw.splitlines(keepends=True)[-lines:])
        return text[-limit:].decode(errors="replace")

    def _line(self, stream: str, tag: bytes, text: bytes) -> bytes:
        return b"%s %s %s %s\n" % (timestamp().encode(), stream.encode(), tag, text)

    def _append(self, data: bytes) -> None:
        if self._size + len(data) > MAX_FILE_BYTES and self._size:
            self._file.close()
            self.path.replace(self.path.with_name(self.path.name + ".1"))
            self._file = _open_private(self.path)
            self._size = 0
        self._file.write(data)
        self._size += len(data)

    @staticmethod
    def _prune(directory: Path) -> None:
        runs = sorted({run for p in directory.glob("*.log*") if (run := _run_of(p)) is not None})
        for run in runs[:-KEEP_RUNS]:
            for path in directory.glob(f"{run}.*"):
                path.unlink(missing_ok=True)


def _run_of(path: Path) -> int | None:
    head = path.name.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _content(line: bytes) -> bytes:
    """The text of one CRI log line, with its newline unless it is partial."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return b""
    text = parts[3] if len(parts) == 4 else b""
    return text if parts[2] == b"P" else text + b"\n"


def remove_pod(pods_dir: Path, namespace: str, name: str, uid: str) -> None:
    """Delete a pod's logs and working directories."""
    shutil.rmtree(pod_dir(pods_dir, namespace, name, uid), ignore_errors=True)


class PodLogs:
    """Reads container logs the way ``GET .../pods/<name>/log`` serves them."""

    def __init__(self, pods_dir: Path) -> None:
        self.pods_dir = pods_dir

    def run_path(self, pod: dict[str, Any], container: str, *, previous: bool = False) -> Path:
        """The log file of the run that ``kubectl logs`` means; raises :class:`LookupError`
        with upstream's message when there is none."""
        meta = pod["metadata"]
        name = meta["name"]
        spec = pod.get("spec") or {}
        names = [c.get("name") for key in ("initContainers", "containers") for c in spec.get(key) or []]
        if container not in names:
            raise LookupError(f"container {container} is not valid for pod {name}")
        status = pod.get("status") or {}
        statuses = [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]
        cs = next((s for s in statuses if s.get("name") == container), None)
        if cs is None:
            raise LookupError(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated")
        if previous:
            if not last or not last.get("containerID"):
                raise LookupError(f'previous terminated container "{container}" in pod "{name}" not found')
            wanted = last["containerID"]
        elif "running" in state or "terminated" in state:
            wanted = (state.get("running") or state.get("terminated") or {}).get("containerID") or cs.get(
                "containerID", ""
            )
        elif last and last.get("containerID"):
            wanted = last["containerID"]
        else:
            raise LookupError(_waiting_message(container, name, (state.get("waiting") or {}).get("reason")))
        directory = pod_dir(self.pods_dir, meta.get("namespace", ""), name, meta.get("uid", "")) / container
        found = self._find(directory, meta.get("uid", ""), container, wanted.rpartition("://")[2])
        if found is None:
            raise LookupError(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')
        return found

    @staticmethod
    def _find(directory: Path, uid: str, container: str, wanted: str) -> Path | None:
        for path in directory.glob("*.log"):
            run = _run_of(path)
            if run is not None and container_id(uid, container, run) == wanted:
                return path
        return None

    async def read(
        self,
        pod: dict[str, Any],
        container: str,
        *,
        previous: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> bytes:
        """The log as ``kubectl logs`` prints it; :class:`LookupError` when there is none."""
        path = self.run_path(pod, container, previous=previous)
        lines = _read_lines(path.with_name(path.name + ".1")) + _read_lines(path)
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        out = _format(lines, _since(since_seconds), timestamps)
        return out[:limit_bytes] if limit_bytes is not None else out

    async def follow(
        self,
        pod: dict[str, Any],
        container: str,
        *,
        previous: bool = False,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        timestamps: bool = False,
        limit_bytes: int | None = None,
    ) -> AsyncIterator[bytes]:
        """The log so far, then new output as it comes, until the run ends (or its pod is
        removed). Raises :class:`LookupError` like :meth:`read`."""
        path = self.run_path(pod, container, previous=previous)
        data, offset = _read_from(path, 0)
        lines = _read_lines(path.with_name(path.name + ".1")) + data.splitlines(keepends=True)
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        since = _since(since_seconds)
        budget = limit_bytes
        chunk = _format(lines, since, timestamps)
        while True:
            if chunk:
                if budget is not None:
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                yield chunk
                if budget is not None and budget <= 0:
                    return
            finished = path.with_suffix(".done").exists() or not path.parent.exists()
            data, offset = _read_from(path, offset)
            chunk = _format(data.splitlines(keepends=True), since, timestamps) if data else b""
            if not chunk and finished:
                return
            if not chunk:
                await asyncio.sleep(FOLLOW_POLL)


def _waiting_message(container: str, pod: str, reason: str | None) -> str:
    prefix = f'container "{container}" in pod "{pod}" is waiting to start'
    if reason == "ErrImagePull":
        return f"{prefix}: image can't be pulled"
    if reason == "ImagePullBackOff":
        return f"{prefix}: trying and failing to pull image"
    if reason:
        return f"{prefix}: {reason}"
    return f"{prefix} - no logs yet"


def _since(seconds: int | None) -> bytes | None:
    if seconds is None:
        return None
    return timestamp(datetime.now(timezone.utc) - timedelta(seconds=seconds)).encode()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_lines(path: Path) -> list[bytes]:
    try:
        return path.read_bytes().splitlines(keepends=True)
    except OSError:
        return []


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    """Complete lines written after ``offset``, and the offset after them (a rotated file
    restarts at 0)."""
    size = _size(path)
    if size < offset:
        offset = 0
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return b"", offset
    end = data.rfind(b"\n") + 1
    return data[:end], offset + end


def _format(lines: list[bytes], since: bytes | None, timestamps: bool) -> bytes:
    out = []
    for line in lines:
        stamp = line.split(b" ", 1)[0]
        if since is not None and stamp < since:
            continue
        text = _content(line)
        out.append(stamp + b" " + text if timestamps else text)
    return b"".join(out)
