"""A pod's status as kubelet reports it: container statuses, phase and conditions.

:class:`ContainerRecord` is what the kubelet knows of one container; :func:`pod_status` turns
the records into ``status`` with upstream's phase rules (``getPhase``) and its conditions in
upstream order: PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labkit.shared.timeutil import rfc3339

CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


@dataclass
class ContainerRecord:
    """The kubelet's view of one container of a pod."""

    name: str
    image: str
    init: bool = False
    image_id: str = ""
    container_id: str = ""
    restart_count: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    started: bool = False

    def waiting(self, reason: str, message: str = "") -> None:
        """Waiting, for ``reason``."""
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        self.ready = self.started = False

    def running(self, container_id: str, started: bool) -> None:
        """Running since now."""
        self.container_id = container_id
        self.state = {"running": {"startedAt": rfc3339()}}
        self.started = started
        self.ready = False

    def terminated(self, exit_code: int, reason: str, message: str = "") -> dict[str, Any]:
        """Ended now with ``exit_code``; returns the terminated state."""
        started = (self.state.get("running") or {}).get("startedAt") or rfc3339()
        state: dict[str, Any] = {"exitCode": exit_code, "reason": reason}
        if message:
            state["message"] = message
        state.update({"startedAt": started, "finishedAt": rfc3339()})
        if self.container_id:
            state["containerID"] = f"labkit://{self.container_id}"
        self.state = {"terminated": state}
        self.ready = self.started = False
        return state

    def to_wait(self, reason: str, message: str = "") -> None:
        """Waiting to run again: the terminated state becomes the last state."""
        if "terminated" in self.state:
            self.last_state = {"terminated": self.state["terminated"]}
        self.waiting(reason, message)

    @property
    def succeeded(self) -> bool:
        """Ended with exit code 0."""
        return int((self.state.get("terminated") or {}).get("exitCode", -1)) == 0

    def to_status(self) -> dict[str, Any]:
        """The containerStatuses entry."""
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = f"labkit://{self.container_id}"
        return status


def phase(records: list[ContainerRecord], restart_policy: str) -> str:
    """Pending, Running, Succeeded or Failed, by upstream's rules."""
    inits = [r for r in records if r.init]
    for record in inits:
        if record.succeeded:
            continue
        if "terminated" in record.state and restart_policy == "Never":
            return "Failed"
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for record in (r for r in records if not r.init):
        if "running" in record.state:
            running += 1
        elif "terminated" in record.state:
            stopped += 1
            succeeded += record.succeeded
        elif record.last_state.get("terminated"):
            stopped += 1
            succeeded += int(record.last_state["terminated"].get("exitCode", -1)) == 0
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Running" if restart_policy == "OnFailure" else "Failed"


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    condition: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


def conditions(
    records: list[ContainerRecord], pod_phase: str, sandbox: bool, previous: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The pod's conditions, keeping lastTransitionTime where a status did not change and the
    scheduler's PodScheduled condition."""
    apps = [r for r in records if not r.init]
    unfinished = [r.name for r in records if r.init and not r.succeeded]
    unready = [r.name for r in apps if not r.ready]
    ready_reason, ready_message = (
        "ContainersNotReady",
        f"containers with unready status: [{' '.join(unready)}]",
    )
    if pod_phase == "Succeeded":
        ready_reason, ready_message = "PodCompleted", ""
    new = [
        _condition("PodReadyToStartContainers", sandbox),
        _condition(
            "Initialized",
            not unfinished,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(unfinished)}]",
        ),
        _condition("Ready", not unready and pod_phase != "Succeeded", ready_reason, ready_message),
        _condition("ContainersReady", not unready and pod_phase != "Succeeded", ready_reason, ready_message),
    ]
    old = {c.get("type"): c for c in previous}
    now = rfc3339()
    scheduled = old.get("PodScheduled") or {
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    for condition in new:
        before = old.get(condition["type"])
        same = before is not None and before.get("status") == condition["status"]
        condition["lastTransitionTime"] = before.get("lastTransitionTime", now) if same and before else now
    others = [c for t, c in old.items() if t not in CONDITION_ORDER]
    return [*new, scheduled, *others]


def pod_status(
    previous: dict[str, Any],
    records: list[ContainerRecord],
    restart_policy: str,
    *,
    pod_ip: str,
    host_ip: str,
    start_time: str,
) -> dict[str, Any]:
    """The whole pod status (``qosClass`` and other fields of ``previous`` are kept)."""
    pod_phase = phase(records, restart_policy)
    status = {k: v for k, v in previous.items() if k not in ("reason", "message", "nominatedNodeName")}
    status.update(
        {
            "phase": pod_phase,
            "conditions": conditions(records, pod_phase, bool(pod_ip), previous.get("conditions") or []),
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "startTime": start_time,
            "containerStatuses": sorted(
                (r.to_status() for r in records if not r.init), key=lambda s: str(s["name"])
            ),
        }
    )
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    inits = [r.to_status() for r in records if r.init]
    if inits:
        status["initContainerStatuses"] = inits
    else:
        status.pop("initContainerStatuses", None)
    return status
