"""Pod rows (upstream ``printPod``): the Ready, Status and Restarts cells ``kubectl get pods`` shows.

:class:`PodSummary` works a pod's status out the way upstream does, init containers and sidecars
included; :func:`pod_conditions` marks finished pods' rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from labkit.embedded.apiserver.tables.cells import AGE, NAME, NONE, Cells, column, metadata_of, name_age
from labkit.shared import timeutil

POD_COLUMNS = [
    NAME,
    column("Ready", "Ready containers out of all containers in the pod."),
    column("Status", "The aggregate status of the containers in this pod."),
    column("Restarts", "Container restarts, and how long ago the latest one was."),
    AGE,
    column("IP", "The pod's IP address.", wide=True),
    column("Node", "The node the pod is bound to.", wide=True),
    column("Nominated Node", "The node the scheduler nominated for preemption.", wide=True),
    column("Readiness Gates", "Readiness gates whose conditions are True.", wide=True),
]


def _condition_true(conditions: list[dict[str, Any]], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _terminated_reason(terminated: dict[str, Any]) -> str:
    if terminated.get("reason"):
        return terminated["reason"]
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', 0)}"


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return timeutil.parse_rfc3339(text)
    except ValueError:
        return None


def _finished(status: dict[str, Any]) -> datetime | None:
    return _time(((status.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


class PodSummary:
    """Readiness, status text and restarts of a pod, computed in upstream printPod's order."""

    def __init__(self, pod: dict[str, Any]) -> None:
        self.spec = pod.get("spec") or {}
        self.status = pod.get("status") or {}
        self.conditions = self.status.get("conditions") or []
        self.phase = self.status.get("phase") or ""
        self.reason = self.status.get("reason") or self.phase
        if any(
            c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in self.conditions
        ):
            self.reason = "SchedulingGated"
        self.sidecars = {
            c.get("name") for c in self.spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        }
        self.total = len(self.spec.get("containers") or []) + len(self.sidecars)
        self.ready = 0
        self.restarts = 0
        self.last_restart: datetime | None = None
        initializing, sidecar_restarts, sidecar_last = self._init_containers()
        if not initializing or _condition_true(self.conditions, "Initialized"):
            # Once initialized, only restartable (sidecar) init containers add to the restarts.
            self.restarts, self.last_restart = sidecar_restarts, sidecar_last
            self._containers()
        if metadata_of(pod).get("deletionTimestamp"):
            if self.status.get("reason") == "NodeLost":
                self.reason = "Unknown"
            elif self.phase not in ("Succeeded", "Failed"):
                self.reason = "Terminating"

    def _init_containers(self) -> tuple[bool, int, datetime | None]:
        """Walk init container statuses.

        Returns whether initialization is still running (or failed), and the restarts and latest
        restart time of the sidecar init containers alone.
        """
        sidecar_restarts, sidecar_last = 0, None
        statuses = self.status.get("initContainerStatuses") or []
        initializing = False
        for i, cs in enumerate(statuses):
            count, finished = int(cs.get("restartCount") or 0), _finished(cs)
            self.restarts += count
            self.last_restart = _later(self.last_restart, finished)
            is_sidecar = cs.get("name") in self.sidecars
            if is_sidecar:
                sidecar_restarts += count
                sidecar_last = _later(sidecar_last, finished)
            state = cs.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting") or {}
            if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
                continue
            if is_sidecar and cs.get("started"):
                self.ready += 1 if cs.get("ready") else 0
                continue
            if terminated is not None:
                self.reason = "Init:" + _terminated_reason(terminated)
            elif waiting.get("reason") and waiting["reason"] != "PodInitializing":
                self.reason = "Init:" + waiting["reason"]
            else:
                self.reason = f"Init:{i}/{len(self.spec.get('initContainers') or [])}"
            initializing = True
            break
        return initializing, sidecar_restarts, sidecar_last

    def _containers(self) -> None:
        running = False
        for cs in reversed(self.status.get("containerStatuses") or []):
            self.restarts += int(cs.get("restartCount") or 0)
            self.last_restart = _later(self.last_restart, _finished(cs))
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated")
            if waiting.get("reason"):
                self.reason = waiting["reason"]
            elif terminated is not None:
                self.reason = _terminated_reason(terminated)
            elif cs.get("ready") and state.get("running") is not None:
                running = True
                self.ready += 1
        if self.reason == "Completed" and running:
            self.reason = "Running" if _condition_true(self.conditions, "Ready") else "NotReady"

    def restarts_text(self, now: datetime) -> str:
        """``2``, or ``2 (30s ago)`` when the latest restart time is known."""
        if self.restarts and self.last_restart is not None:
            ago = timeutil.human_duration((now - self.last_restart).total_seconds())
            return f"{self.restarts} ({ago} ago)"
        return str(self.restarts)

    def readiness_gates(self) -> str:
        """``passed/total`` readiness gates, ``<none>`` without any."""
        gates = self.spec.get("readinessGates") or []
        if not gates:
            return NONE
        first: dict[str, str] = {}
        for c in self.conditions:
            first.setdefault(c.get("type"), c.get("status"))
        passed = sum(1 for g in gates if first.get(g.get("conditionType")) == "True")
        return f"{passed}/{len(gates)}"


def pod_cells(pod: dict[str, Any], now: datetime) -> Cells:
    """A pod row (``printPod``): Ready, Status, Restarts, Age and the wide cells."""
    s = PodSummary(pod)
    name, age = name_age(pod, now)
    ips = s.status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips else s.status.get("podIP")) or NONE
    return [
        name,
        f"{s.ready}/{s.total}",
        s.reason,
        s.restarts_text(now),
        age,
        ip,
        s.spec.get("nodeName") or NONE,
        s.status.get("nominatedNodeName") or NONE,
        s.readiness_gates(),
    ]


_FINISHED_MESSAGES = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}


def pod_conditions(pod: dict[str, Any]) -> list[dict[str, str]]:
    """Row conditions kubectl uses to mark finished pods."""
    phase = (pod.get("status") or {}).get("phase")
    message = _FINISHED_MESSAGES.get(phase or "")
    if message is None:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase or "", "message": message}]
