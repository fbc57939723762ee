"""The node's record of its running containers, and the killing of what a killed daemon left.

An append-only journal, one JSON line per start ("+") and end ("-"), so that recording a
container costs the same however many run; it is rewritten whole only when ended entries
outnumber the live ones. A kubelet starting after its daemon was killed reads it and kills
what is left of the containers it names: no pod process outlives its cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from labkit.embedded.kubelet.procfs import environ_has, processes
from labkit.embedded.kubelet.runtime import Container

MARKS = ("HOSTNAME", "POD_IP")  # environment entries that tell a pod's processes from others


class Journal:
    """The file ``path`` of running containers; ``live`` is the runtime's own table of them,
    which a compaction writes out whole."""

    def __init__(self, path: Path, live: Mapping[str, Container]) -> None:
        self.path = path
        self.live = live
        self._file: TextIO | None = None
        self._lines = 0

    def save(self, cid: str, container: Container | None) -> None:
        """Record that container ``cid`` started (``container``) or ended (None)."""
        if container is not None:
            marks = [f"{k}={container.spec.env.get(k, '')}" for k in MARKS]
            line = {"op": "+", "id": cid, "pid": container.pid, "marks": marks}
        else:
            line = {"op": "-", "id": cid}
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        self._lines += 1
        if self._lines > 64 and self._lines > 4 * len(self.live):
            self._compact()

    def _compact(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            for cid, c in self.live.items():
                marks = [f"{k}={c.spec.env.get(k, '')}" for k in MARKS]
                out.write(json.dumps({"op": "+", "id": cid, "pid": c.pid, "marks": marks}) + "\n")
        tmp.replace(self.path)
        if self._file is not None:
            self._file.close()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._lines = len(self.live)

    def _recorded(self) -> dict[str, dict[str, object]]:
        entries: dict[str, dict[str, object]] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
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
        """Kill what is left of the containers a previous run recorded, and start the record
        afresh; how many processes were killed."""
        entries = self._recorded()
        sessions = {int(e["pid"]): [str(m).encode() for m in e.get("marks", [])] for e in entries.values()}
        killed = 0
        for pid, session in processes() if sessions else []:
            marks = sessions.get(session)
            if marks is not None and environ_has(pid, marks):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)
        self._lines = 0
        return killed
