"""One container of a pod, from image to exit and back: pull, configure, start, probe, restart.

A :class:`ContainerRunner` drives its :class:`ContainerRecord` through upstream's states and
events: Pulling/Pulled (or ErrImagePull, ImagePullBackOff, ErrImageNeverPull: ``imagepull``),
CreateContainerConfigError (``runspec``), Created/Started (or RunContainerError), Running,
Terminated (Completed or Error), CrashLoopBackOff with the restart back-off, and Killing after a
failed liveness or startup probe (``probing``).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.embedded.kubelet.backoff import go_duration
from labkit.embedded.kubelet.imagepull import pull
from labkit.embedded.kubelet.probing import start_probes
from labkit.embedded.kubelet.runspec import configure
from labkit.embedded.kubelet.runtime import Container, ContainerSpec, StartError
from labkit.embedded.kubelet.status import ContainerRecord
from labkit.embedded.kubelet.termination_log import read_termination_log

if TYPE_CHECKING:
    from labkit.embedded.kubelet.host import PodHost

PORT_IN_USE = re.compile(r"address already in use", re.IGNORECASE)
PORT_HINT = (
    "the app's port is already in use: another container of the same pod listens on it (containers "
    "of a pod share one network), or a program on this machine holds it on all addresses"
)


class ContainerRunner:
    """Runs one container of a pod for as long as the pod wants it."""

    def __init__(self, worker: PodHost, spec: dict[str, Any], record: ContainerRecord, run: int) -> None:
        self.worker = worker
        self.spec = spec
        self.record = record
        self.name = str(spec["name"])
        self.next_run = run  # the restartCount of the next run, which numbers its log
        self.container: Container | None = None
        self.port_hint = False
        self.killed_by_probe = False
        self.redefined = False  # the pod's spec changed this container (a new image)
        self.termination_log: Path | None = None  # the run's terminationMessagePath, on the host
        self._poke = asyncio.Event()
        kind = "initContainers" if record.init else "containers"
        self.field_path = f"spec.{kind}{{{self.name}}}"

    # -- helpers -------------------------------------------------------------------------

    def event(self, kind: str, reason: str, message: str) -> None:
        """An event about this container."""
        self.worker.event(kind, reason, message, self.field_path)

    @property
    def key(self) -> str:
        """The back-off key (pod UID and container name)."""
        return f"{self.worker.uid}/{self.name}"

    @property
    def pod_ref(self) -> str:
        """``name_namespace(uid)`` as kubelet's messages write a pod."""
        return f"{self.worker.name}_{self.worker.namespace}({self.worker.uid})"

    async def sleep(self, seconds: float) -> bool:
        """Sleep; True if woken early because the pod is being deleted or the container was
        redefined (the caller looks again at once)."""
        wakers = [
            asyncio.ensure_future(self.worker.terminating.wait()),
            asyncio.ensure_future(self._poke.wait()),
        ]
        done, _ = await asyncio.wait(wakers, timeout=max(seconds, 0.0), return_when=asyncio.FIRST_COMPLETED)
        for task in wakers:
            task.cancel()
        self._poke.clear()
        return bool(done)

    def redefine(self, spec: dict[str, Any]) -> None:
        """The pod's spec gives this container a new definition (``kubectl set image``): restart
        it with that, now."""
        self.spec = spec
        self.record.image = str(spec.get("image", ""))
        self.redefined = True
        self._poke.set()
        if self.container is not None:
            self.event("Normal", "Killing", f"Container {self.name} definition changed, will be restarted")
            grace = float(self.worker.pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))
            asyncio.get_running_loop().create_task(self.worker.kubelet.runtime.stop(self.container, grace))

    # -- the loop ------------------------------------------------------------------------

    async def run(self) -> bool:
        """Run until the container is done for good; True if it ended successfully."""
        kubelet = self.worker.kubelet
        while not self.worker.terminating.is_set():
            image = await pull(self)
            if image is None:
                return False
            spec = await configure(self, image)
            if spec is None:
                return False
            code = await self._run_once(spec)
            if self.worker.terminating.is_set():
                return code == 0
            if self.redefined:
                self.redefined = False
                continue
            if not self._restart(code):
                self.worker.attempted(self)
                return code == 0
            delay = kubelet.crash_backoff.delay(self.key)
            if delay and not await self._back_off(delay):
                return False
        return False

    def _restart(self, code: int) -> bool:
        policy = self.worker.restart_policy
        if policy == "Never":
            return False
        if self.killed_by_probe and not self.record.init:
            return True
        if self.record.init or policy == "OnFailure":
            return code != 0
        return True

    async def _back_off(self, delay: float) -> bool:
        """Wait out the restart back-off; False if the pod is going away meanwhile."""
        message = f"back-off {go_duration(delay)} restarting failed container={self.name} pod={self.pod_ref}"
        event = f"Back-off restarting failed container {self.name} in pod {self.pod_ref}"
        if self.port_hint:
            message += f": {PORT_HINT}"
            event += f": {PORT_HINT}"
        waiting = (self.record.state.get("waiting") or {}).get("reason")
        if waiting != "RunContainerError":
            self.record.to_wait("CrashLoopBackOff", message)
        self.event("Warning", "BackOff", event)
        self.worker.attempted(self)
        self.worker.publish()
        await self.sleep(delay)
        if self.worker.terminating.is_set():
            return False
        self.worker.kubelet.crash_backoff.retried(self.key)
        return True

    # -- one run -------------------------------------------------------------------------

    async def _run_once(self, spec: ContainerSpec) -> int:
        """Start the container and wait for it to end; its exit code (128 if it did not start)."""
        record, runtime = self.record, self.worker.kubelet.runtime
        if "terminated" in record.state:
            record.last_state = {"terminated": record.state["terminated"]}
        record.restart_count = self.next_run
        self.next_run += 1
        record.image_id = f"{spec.image.repository}@{spec.image.id}"
        self.port_hint = self.killed_by_probe = self.redefined = False
        self.event("Normal", "Created", f"Created container: {self.name}")
        try:
            container = await runtime.start(spec)
        except StartError as e:
            message = f"failed to start container process: {e}"
            record.container_id = spec.id
            record.terminated(128, "StartError", message)
            record.to_wait("RunContainerError", message)
            self.event("Warning", "Failed", f"Error: {message}")
            self.worker.attempted(self)
            self.worker.publish()
            return 128
        self.container = container
        if self.worker.terminating.is_set():  # deleted (or powered off) while it was starting
            asyncio.get_running_loop().create_task(runtime.stop(container, self.worker.grace()))
        startup = self.spec.get("startupProbe")
        readiness = self.spec.get("readinessProbe")
        record.running(spec.id, started=not startup)
        record.ready = not startup and not readiness
        self.event("Normal", "Started", f"Started container {self.name}")
        self.worker.attempted(self)
        self.worker.publish()
        probe_tasks = start_probes(self, container, started=asyncio.Event())
        try:
            code = await runtime.wait(container)
        finally:
            for task in probe_tasks:
                task.cancel()
            self.container = None
        if self.worker.halted:
            return code
        self._finished(container, code)
        return code

    def _finished(self, container: Container, code: int) -> None:
        message = read_termination_log(self.termination_log)
        if code != 0 and not message:
            tail = self.worker.kubelet.runtime.log_tail(container)
            if PORT_IN_USE.search(tail[-4096:]):
                self.port_hint = True
                message = PORT_HINT
            elif self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
                message = tail
        self.record.terminated(code, "Completed" if code == 0 else "Error", message)
        self.worker.publish()
