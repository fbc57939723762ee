"""One pod on a node: its address, its containers in order, its status and its deletion.

A :class:`PodWorker` admits a pod (pod IP, a real port per container), runs its init
containers one after the other and then its app containers together, and writes the pod's
status, coalescing changes into one write per event-loop turn. The first status is held back
until every container has been tried once, so a pod goes from Pending to Running in one write.
On deletion it stops the containers (SIGTERM, the grace period, SIGKILL) and removes the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.kubelet.container import ContainerRunner
from labkit.embedded.kubelet.env import ConfigError
from labkit.embedded.kubelet.filesystem import PodFiles, port_event
from labkit.embedded.kubelet.status import ContainerRecord, pod_status
from labkit.embedded.kubelet.volumes import PodVolumes
from labkit.embedded.podlogs import pod_dir, remove_pod
from labkit.embedded.resources import lookup
from labkit.shared.timeutil import rfc3339

if TYPE_CHECKING:
    from labkit.embedded.kubelet.host import NodeHost

PODS = lookup("", "v1", "pods")
assert PODS is not None
HOLD_LIMIT = 0.5  # the first status waits at most this long for every container to be tried
log = logging.getLogger("labkit.kubelet")


REPORT_POLL = 0.25  # seconds between looks at the network shim's reports


class PodWorker:
    """Runs one pod with the process runtime."""

    def __init__(self, kubelet: NodeHost, pod: dict[str, Any], ip: str) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.name: str = meta["name"]
        self.namespace: str = meta.get("namespace", "default")
        self.directory = pod_dir(kubelet.ctx.state.pods_dir, self.namespace, self.name, self.uid)
        self.files = PodFiles(self.directory)  # the /etc files its containers share
        state = kubelet.ctx.state
        sandbox = kubelet.sandbox()
        owner = None if isinstance(sandbox, Exception) else sandbox.isolation.drop_to
        self.volumes = PodVolumes(
            kubelet.ctx.store, pod, self.directory, state.token(), _read(state.ca_file), owner
        )
        spec = pod.get("spec") or {}
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        previous = pod.get("status") or {}
        self.ip = ip
        self.start_time = str(previous.get("startTime") or rfc3339())
        self.inits = [self._runner(c, True, previous) for c in spec.get("initContainers") or []]
        self.apps = [self._runner(c, False, previous) for c in spec.get("containers") or []]
        self.terminating = asyncio.Event()
        self.halted = False  # the node went away: no more writes, events or restarts
        self.gone = False
        self._holding: set[ContainerRunner] = set()
        self._scheduled = False
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"pod {self.namespace}/{self.name}"
        )
        self._stopper: asyncio.Task[None] | None = None

    def _runner(self, container: dict[str, Any], init: bool, previous: dict[str, Any]) -> ContainerRunner:
        """A runner for ``container``, taking over what the previous status says of it (after a
        daemon or node restart the container runs again, as after a reboot)."""
        key = "initContainerStatuses" if init else "containerStatuses"
        old = next((s for s in previous.get(key) or [] if s.get("name") == container["name"]), None)
        record = ContainerRecord(str(container["name"]), str(container.get("image", "")), init=init)
        if self.pod.get("spec", {}).get("initContainers"):
            record.waiting("PodInitializing")
        run = 0
        if old is not None:
            record.restart_count = int(old.get("restartCount") or 0)
            record.last_state = old.get("lastState") or {}
            record.image_id = str(old.get("imageID") or "")
            state = old.get("state") or {}
            run = record.restart_count + (1 if old.get("containerID") else 0)
            if init and int((state.get("terminated") or {}).get("exitCode", -1)) == 0:
                record.state = state
            elif "running" in state:
                record.last_state = {
                    "terminated": {
                        "exitCode": 255,
                        "reason": "Unknown",
                        "startedAt": state["running"].get("startedAt"),
                        "finishedAt": rfc3339(),
                        "containerID": old.get("containerID", ""),
                    }
                }
        return ContainerRunner(self, container, record, run)

    # -- running ---------------------------------------------------------------------------

    async def _run(self) -> None:
        reports = asyncio.get_running_loop().create_task(self._watch_reports())
        try:
            for runner in self.inits:
                if runner.record.succeeded:
                    continue
                self._hold([runner])
                if not await runner.run() or self.terminating.is_set():
                    self.publish()
                    return
            for runner in self.apps:
                if runner.record.state.get("waiting", {}).get("reason") == "PodInitializing":
                    runner.record.waiting("ContainerCreating")
            self._hold(self.apps)
            await asyncio.gather(*(runner.run() for runner in self.apps))
            self.publish()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s/%s: the kubelet failed", self.namespace, self.name)
        finally:
            reports.cancel()

    async def _watch_reports(self) -> None:
        """Turn the network shim's reports into events: a port that one container of the pod
        could not listen on because another process of the pod holds it, as the app's
        ``EADDRINUSE`` in a real container (whether or not the app exits)."""
        offset = 0
        turns = 0
        while not self.terminating.is_set():
            await asyncio.sleep(REPORT_POLL)
            turns += 1
            if turns % 4 == 0:  # ConfigMap and Secret volumes follow their objects
                with contextlib.suppress(ConfigError, OSError):
                    self.volumes.refresh()
            try:
                size = self.files.report.stat().st_size
            except OSError:
                continue
            if size <= offset:
                continue
            with open(self.files.report, "rb") as f:
                f.seek(offset)
                data = f.read(size - offset)
            offset += data.rfind(b"\n") + 1
            for line in data.decode(errors="replace").splitlines():
                event = port_event(line)
                if event is not None:
                    self.event("Warning", "PortInUse", event)

    def _hold(self, runners: list[ContainerRunner]) -> None:
        self._holding = set(runners)
        asyncio.get_running_loop().call_later(HOLD_LIMIT, self._release, runners)

    def _release(self, runners: list[ContainerRunner]) -> None:
        if self._holding and self._holding <= set(runners):
            self._holding.clear()
            self.publish()

    def attempted(self, runner: ContainerRunner) -> None:
        """``runner`` has tried its container once (started, or failed to)."""
        if runner in self._holding:
            self._holding.discard(runner)
            if not self._holding:
                self.publish()

    def port_for(self, container: str, container_port: int | None) -> int | None:
        """The port ``PORT`` says for a container: its first containerPort (or its image's first
        exposed port), on which it really listens in its pod; None when it declares none."""
        return container_port

    # -- status and events -----------------------------------------------------------------

    def event(self, kind: str, reason: str, message: str, field_path: str = "") -> None:
        """Record an event about this pod, as this node's kubelet."""
        if not self.halted:
            self.kubelet.ctx.event(
                self.pod, "kubelet", kind, reason, message, host=self.kubelet.node, field_path=field_path
            )

    @property
    def records(self) -> list[ContainerRecord]:
        """The records of every container, init containers first."""
        return [r.record for r in (*self.inits, *self.apps)]

    def publish(self) -> None:
        """Write the status soon (once for all changes made in this turn of the loop)."""
        if self.halted or self.gone or self._holding or self._scheduled:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        if self.halted or self.gone:
            return

        def change(pod: dict[str, Any]) -> None:
            if pod["metadata"].get("uid") != self.uid:
                return
            pod["status"] = pod_status(
                pod.get("status") or {},
                self.records,
                self.restart_policy,
                pod_ip=self.ip,
                host_ip=self.kubelet.host_ip,
                start_time=self.start_time,
            )

        try:
            self.pod = self.kubelet.ctx.registry.mutate(
                PODS, self.namespace, self.name, change, subresource="status", manager="kubelet"
            )
        except ApiError as e:
            if e.code == 404:
                self.gone = True
            else:
                self.publish()

    # -- changes and deletion --------------------------------------------------------------

    def update(self, pod: dict[str, Any]) -> None:
        """A newer version of the pod was stored."""
        if pod["metadata"].get("uid") != self.uid:
            return
        self.pod = pod
        containers = {
            c.get("name"): c for key in ("initContainers", "containers") for c in pod["spec"].get(key) or []
        }
        for runner in (*self.inits, *self.apps):
            wanted = containers.get(runner.name)
            if wanted is not None and wanted.get("image") != runner.spec.get("image"):
                runner.redefine(wanted)
        if pod["metadata"].get("deletionTimestamp") and self._stopper is None:
            self._stopper = asyncio.get_running_loop().create_task(self._terminate(self.grace()))

    def grace(self) -> float:
        """Seconds a container being stopped now gets after SIGTERM."""
        if self.halted:
            return 0.0
        return float(self.pod["metadata"].get("deletionGracePeriodSeconds") or 0)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The worker's tasks: running the pod, and stopping it if it is being deleted."""
        return [self.task] + ([self._stopper] if self._stopper is not None else [])

    def running(self) -> list[ContainerRunner]:
        """The runners whose container is running."""
        return [r for r in (*self.inits, *self.apps) if r.container is not None]

    async def _terminate(self, grace: float) -> None:
        """Stop every container (Killing, SIGTERM, ``grace`` seconds, SIGKILL), report, remove."""
        self.terminating.set()
        runtime = self.kubelet.runtime
        stops = []
        for runner in self.running():
            runner.event("Normal", "Killing", f"Stopping container {runner.name}")
            assert runner.container is not None
            stops.append(runtime.stop(runner.container, grace))
        await asyncio.gather(*stops)
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if self.halted:
            return
        self._holding.clear()
        self._scheduled = False
        self._write()
        self.kubelet.finished(self)

    def halt(self) -> None:
        """Stop reporting (the node is powered off or the daemon is stopping)."""
        self.halted = True
        self.terminating.set()

    def forget(self) -> None:
        """The pod is gone: kill what still runs, free its address and remove its files."""
        self.gone = True
        self.halt()
        for runner in self.running():
            assert runner.container is not None
            self.kubelet.runtime.kill(runner.container)
        self.kubelet.pool.release(self.ip)
        self.kubelet.names.unregister(self.files.hosts)
        remove_pod(self.kubelet.ctx.state.pods_dir, self.namespace, self.name, self.uid)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
