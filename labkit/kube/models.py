"""Plain models of what is in a cluster, shared by every layer: frozen dataclasses, no I/O.

The Lab returns DataFrames to learners (``lab.pods()``), the widgets draw these models, and
the tests read either. Each list type is a tuple with :meth:`Models.frame`, which makes the
DataFrame with the columns a learner reads; pandas is imported only then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

# what a pod tile shows, from the best state to the worst
POD_STATES = ("running", "not-ready", "pending", "terminating", "succeeded", "failed", "crash-looping")
CRASH_REASONS = {"CrashLoopBackOff", "Error", "OOMKilled", "ErrImagePull", "ImagePullBackOff",
                 "ErrImageNeverPull", "InvalidImageName", "CreateContainerError", "RunContainerError",
                 "CreateContainerConfigError"}  # fmt: skip


class Models(tuple[T, ...]):
    """A tuple of models; :meth:`frame` makes it a DataFrame with the class's ``columns``."""

    columns: ClassVar[tuple[str, ...]] = ()

    def frame(self) -> pd.DataFrame:
        """One row per model, with the columns a learner reads."""
        import pandas as pd

        rows = [{c: getattr(m, c) for c in self.columns} for m in self]
        return pd.DataFrame(rows, columns=list(self.columns))


@dataclass(frozen=True)
class PodInfo:
    """One pod as ``kubectl get pods -o wide`` shows it, plus what a picture of it needs."""

    name: str
    namespace: str
    status: str  # kubectl's STATUS column: Running, Pending, CrashLoopBackOff, Terminating, ...
    phase: str  # the pod's phase: Pending, Running, Succeeded, Failed, Unknown
    ready: str  # "1/1": ready containers of all
    restarts: int
    node: str | None
    ip: str | None
    age: str
    owner: str | None = None  # "Deployment/web", "StatefulSet/db", "Pod" owners resolved through ReplicaSets
    labels: dict[str, str] = dataclasses.field(default_factory=dict, compare=False, hash=False)
    deleting: bool = False

    @property
    def is_ready(self) -> bool:
        """Every container ready (and at least one)."""
        done, _, total = self.ready.partition("/")
        return done == total and total not in ("", "0")

    @property
    def state(self) -> str:
        """One of :data:`POD_STATES`: what colour its tile is."""
        if self.deleting or self.status == "Terminating":
            return "terminating"
        if self.status in CRASH_REASONS or self.status.startswith(("Init:CrashLoopBackOff", "Init:Error")):
            return "crash-looping"
        if self.phase == "Failed" or self.status in ("Failed", "Evicted"):
            return "failed"
        if self.phase == "Succeeded" or self.status == "Completed":
            return "succeeded"
        if self.phase == "Running":
            return "running" if self.is_ready else "not-ready"
        return "pending"


@dataclass(frozen=True)
class NodeInfo:
    """One node: its name and role, whether it is Ready, cordoned or stopped, and its pods."""

    name: str
    status: str  # kubectl's STATUS column: Ready, NotReady, Ready,SchedulingDisabled
    roles: str  # kubectl's ROLES column: control-plane, <none>, ...
    pods: int  # how many of the namespace's unfinished pods it runs
    capacity: int  # how many pods it can hold (status.capacity.pods)
    ready: bool
    cordoned: bool
    stopped: bool = False  # powered off (the embedded cluster's nodes can be)
    age: str = ""

    @property
    def condition(self) -> str:
        """``stopped``, ``not-ready``, ``cordoned`` or ``ready``: the worst that applies."""
        if self.stopped:
            return "stopped"
        if not self.ready:
            return "not-ready"
        return "cordoned" if self.cordoned else "ready"


@dataclass(frozen=True)
class ServiceInfo:
    """One Service: its type, address, ports and how many ready endpoints it has."""

    name: str
    namespace: str
    type: str
    cluster_ip: str | None
    ports: str  # kubectl's PORT(S) column: 80:30080/TCP,443/TCP
    endpoints: int  # ready addresses behind it
    selector: dict[str, str] = dataclasses.field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class EventInfo:
    """One event: when it was last seen, its type and reason, what it is about, and its message."""

    last_seen: str
    type: str | None
    reason: str | None
    object: str  # "pod/web-1"
    message: str | None
    timestamp: str = ""  # RFC 3339, for sorting


@dataclass(frozen=True)
class RequestSample:
    """One request of a traffic run: who served it and how it went."""

    i: int
    status: int | None
    latency_ms: float
    conn: int  # which connection carried it (requests on one keep-alive connection share one)
    pod: str | None = None
    node: str | None = None
    error: str | None = None
    mode: str | None = None
    via: str = ""


class Pods(Models[PodInfo]):
    """Pods, sorted by name."""

    columns = ("name", "ready", "status", "restarts", "node", "ip", "age")

    def on(self, node: str | None) -> Pods:
        """The pods on ``node`` (None: the ones on no node yet)."""
        return Pods(p for p in self if p.node == node)


class Nodes(Models[NodeInfo]):
    """Nodes, sorted by name."""

    columns = ("name", "status", "roles", "pods")


class Services(Models[ServiceInfo]):
    """Services, sorted by name."""

    columns = ("name", "type", "cluster_ip", "ports", "endpoints")


class Events(Models[EventInfo]):
    """Events, oldest first."""

    columns = ("last_seen", "type", "reason", "object", "message")


class Requests(Models[RequestSample]):
    """The requests of a traffic run, in the order they were sent."""

    columns = ("i", "pod", "node", "status", "latency_ms", "mode", "via", "error")


def sorted_by_name(items: Iterable[Any]) -> list[Any]:
    """Models sorted by their ``name``."""
    return sorted(items, key=lambda m: str(m.name))


# -- what the Lab answers ---------------------------------------------------------------------


@dataclass(frozen=True)
class LabStatus:
    """What ``%lab`` shows: where this Lab works."""

    target: str  # "embedded", "kind" or "kubeconfig"
    cluster: str
    context: str
    server: str
    nodes: list[str]
    namespace: str
    builder: str  # "embedded" or "docker"
    runtime: str = ""  # how the nodes run containers (the embedded cluster: its isolation tool)


@dataclass
class RunResult:
    """An image running once for a quick check: its address, its output, and how to stop it."""

    tag: str
    name: str  # the container's or pod's name
    url: str | None  # where its server answers, when started with a port
    _logs: Callable[[], str] = dataclasses.field(repr=False)
    _stop: Callable[[], None] = dataclasses.field(repr=False)

    def logs(self) -> str:
        """Everything it printed so far."""
        return self._logs()

    def stop(self) -> None:
        """Stop and remove it."""
        self._stop()
