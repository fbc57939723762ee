"""One container of a pod, from image to exit and back: pull, configure, start, probe, restart.

A :class:`ContainerRunner` drives its :class:`ContainerRecord` through upstream's states and
events: Pulling/Pulled (or ErrImagePull, ImagePullBackOff, ErrImageNeverPull),
CreateContainerConfigError, Created/Started (or RunContainerError), Running, Terminated
(Completed or Error), CrashLoopBackOff with the restart back-off, and Killing after a failed
liveness or startup probe.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.embedded.images import BUILTIN_HINT, Image, split_reference
from labkit.embedded.kubelet import probes
from labkit.embedded.kubelet.backoff import go_duration
from labkit.embedded.kubelet.env import ConfigError, Environment
from labkit.embedded.kubelet.filesystem import container_view, inside_command, inside_env, shim_env
from labkit.embedded.kubelet.network import first_port
from labkit.embedded.kubelet.runtime import Container, ContainerSpec, StartError
from labkit.embedded.kubelet.status import ContainerRecord
from labkit.embedded.podlogs import container_id
from labkit.sandbox.view import Mount

if TYPE_CHECKING:
    from labkit.embedded.kubelet.host import PodHost

PORT_IN_USE = re.compile(r"address already in use", re.IGNORECASE)
PORT_HINT = (
    "the app's port is already in use: another container of the same pod listens on it (containers "
    "of a pod share one network), or a program on this machine holds it on all addresses"
)
FAST_PROBE = 0.1  # before a probe first succeeds, within its first period, retry this often


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

    async def _sleep(self, seconds: float) -> bool:
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
            image = await self._pull()
            if image is None:
                return False
            spec = await self._configure(image)
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
        await self._sleep(delay)
        if self.worker.terminating.is_set():
            return False
        self.worker.kubelet.crash_backoff.retried(self.key)
        return True

    # -- image ---------------------------------------------------------------------------

    async def _pull(self) -> Image | None:
        """The container's image, pulled per its pull policy; None if the pod goes away first."""
        store = self.worker.kubelet.images
        while not self.worker.terminating.is_set():
            reference = str(self.spec.get("image") or "")
            policy = self.spec.get("imagePullPolicy") or "IfNotPresent"
            image = store.resolve(reference)
            if image is not None and policy != "Always":
                self.event("Normal", "Pulled", f'Container image "{reference}" already present on machine')
                self._note(image)
                return image
            if policy == "Never":
                message = f'Container image "{reference}" is not present with pull policy of Never'
                self.record.waiting("ErrImageNeverPull", message)
                self.event("Warning", "ErrImageNeverPull", message)
                self.event("Warning", "Failed", "Error: ErrImageNeverPull")
                self.worker.attempted(self)
                self.worker.publish()
                await self._sleep(self.worker.kubelet.ctx.config.backoff_base)
                continue
            started = time.monotonic()
            self.event("Normal", "Pulling", f'Pulling image "{reference}"')
            pull = getattr(store, "pull", None)
            if image is None and pull is not None:
                image = await asyncio.to_thread(pull, reference)  # a download: off the event loop
            if image is not None and not image.local:
                took = go_duration(time.monotonic() - started)
                self.event(
                    "Normal",
                    "Pulled",
                    f'Successfully pulled image "{reference}" in {took} ({took} including waiting). '
                    f"Image size: {image.size} bytes.",
                )
                self._note(image)
                return image
            if not await self._pull_failed(reference, local=image is not None):
                return None
        return None

    def _note(self, image: Image) -> None:
        """Warn when the image is not quite what its tag asks for (another Python, say)."""
        if image.note:
            self.event("Warning", "ImageVersion", image.note)

    async def _pull_failed(self, reference: str, local: bool) -> bool:
        """ErrImagePull, then ImagePullBackOff for the back-off; False if the pod goes away.
        ``local``: the image is here but was built here, so pull policy Always cannot pull it."""
        repository, tag = split_reference(reference)
        if tag == "latest":
            why = 'imagePullPolicy is Always (the default for ":latest" or no tag), so it must be pulled'
            fix = f"give the image a version tag (labkit build -t {repository}:1.0) or set "
        else:
            # the tag is a version, so Always came from the spec: written there by hand, or filled
            # in by defaulting when the pod template was first created with an untagged image
            why = (
                "the container's imagePullPolicy is Always (set in the manifest, or defaulted when the "
                'template was first applied with an untagged or ":latest" image, and kept since), '
                "so it must be pulled"
            )
            fix = "set "
        error = (
            f'image "{repository}:{tag}" was built on this machine and no registry has it, but {why}: '
            f"{fix}imagePullPolicy: IfNotPresent"
            if local
            else f'image "{repository}:{tag}" not found: {BUILTIN_HINT}'
        )
        self.record.waiting("ErrImagePull", error)
        self.event("Warning", "Failed", f'Failed to pull image "{reference}": {error}')
        self.event("Warning", "Failed", "Error: ErrImagePull")
        self.worker.attempted(self)
        self.worker.publish()
        delay = self.worker.kubelet.pull_backoff.wait_after_failure(self.key)
        shown = min(1.0, delay / 2)
        if await self._sleep(shown):
            return not self.worker.terminating.is_set()
        self.record.waiting(
            "ImagePullBackOff", f'Back-off pulling image "{reference}": ErrImagePull: {error}'
        )
        self.event("Normal", "BackOff", f'Back-off pulling image "{reference}"')
        self.event("Warning", "Failed", "Error: ImagePullBackOff")
        self.worker.publish()
        await self._sleep(delay - shown)
        return not self.worker.terminating.is_set()

    # -- configuration -------------------------------------------------------------------

    async def _configure(self, image: Image) -> ContainerSpec | None:
        """The spec of the next run; waits in CreateContainerConfigError while something it
        needs is missing. None if the pod goes away first."""
        worker = self.worker
        while not worker.terminating.is_set():
            port = worker.port_for(self.name, first_port(self.spec, image))
            kubelet = worker.kubelet
            # pods find Services by name through their /etc/hosts; the HTTP proxy is for
            # processes that run without isolation (LABKIT_ISOLATION=none)
            isolated = not isinstance(kubelet.sandbox(), Exception) and kubelet.sandbox().isolated
            proxy = kubelet.http_proxy(worker.namespace) if kubelet.http_proxy and not isolated else None
            environment = Environment(
                kubelet.ctx.store, worker.pod, kubelet.node, worker.ip, kubelet.host_ip, proxy
            )
            try:
                env, argv = environment.build(self.spec, image, port)
                volumes = worker.volumes.mounts(self.spec)
            except ConfigError as e:
                self.record.waiting("CreateContainerConfigError", str(e))
                self.event("Warning", "Failed", f"Error: {e}")
                worker.attempted(self)
                worker.publish()
                await self._sleep(worker.kubelet.ctx.config.backoff_base)
                continue
            base = worker.directory / self.name
            workdir = str(self.spec.get("workingDir") or image.config.working_dir or "/")
            run = self.next_run
            sandbox = kubelet.sandbox()
            if isinstance(sandbox, Exception):
                message = f"no container isolation: {sandbox}"
                self.record.waiting("CreateContainerError", message)
                self.event("Warning", "Failed", f"Error: {message}")
                worker.attempted(self)
                worker.publish()
                await self._sleep(worker.kubelet.ctx.config.backoff_base)
                continue
            view = None
            if sandbox.isolated:
                hostname = environment.hostname()
                worker.files.write(worker.namespace, hostname, sandbox.shim)
                kubelet.names.register(worker.files.hosts, worker.namespace, worker.ip, hostname)
                self.termination_log = _termination_log(base, run)
                inside = str(self.spec.get("terminationMessagePath") or TERMINATION_LOG)
                volumes = [*volumes, Mount(self.termination_log, inside, writable=True)]
                view = container_view(
                    sandbox.isolation, image, base, worker.files, workdir, hostname, sandbox.shim, volumes
                )
                marks = shim_env(worker.ip, hostname, kubelet.node, str(kubelet.ctx.state.path))
                env = {**inside_env(env, image), **marks}
                env.setdefault("HOME", "/root")
                argv = inside_command(image, argv)
                working_dir = view.root / view.cwd.lstrip("/")
            else:
                # LABKIT_ISOLATION=none: the host's files, but the pod's own network all the
                # same (the shim, preloaded by variable: no /etc/ld.so.preload of its own)
                root = image.root if image.root is not None else base / "fs"
                working_dir = root / workdir.lstrip("/")
                env.setdefault("HOME", str(root))
                if sandbox.shim is not None:
                    worker.files.write(worker.namespace, environment.hostname(), None)
                    marks = shim_env(
                        worker.ip,
                        environment.hostname(),
                        kubelet.node,
                        str(kubelet.ctx.state.path),
                        report=str(worker.files.report),
                    )
                    env = {**env, **marks, "LD_PRELOAD": str(sandbox.shim)}
            return ContainerSpec(
                id=container_id(worker.uid, self.name, run),
                namespace=worker.namespace,
                pod=worker.name,
                pod_uid=worker.uid,
                name=self.name,
                image=image,
                argv=argv,
                env=env,
                working_dir=Path(working_dir),
                log=base / f"{run}.log",
                view=view,
                stdin=bool(self.spec.get("stdin")),
                stdin_once=bool(self.spec.get("stdinOnce")),
                tty=bool(self.spec.get("tty")),
            )
        return None

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
        probe_tasks = self._start_probes(container, started=asyncio.Event())
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
        message = _read_termination_log(self.termination_log)
        if code != 0 and not message:
            tail = self.worker.kubelet.runtime.log_tail(container)
            if PORT_IN_USE.search(tail[-4096:]):
                self.port_hint = True
                message = PORT_HINT
            elif self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
                message = tail
        self.record.terminated(code, "Completed" if code == 0 else "Error", message)
        self.worker.publish()

    # -- probes --------------------------------------------------------------------------

    def _start_probes(self, container: Container, started: asyncio.Event) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        tasks = []
        if not self.spec.get("startupProbe"):
            started.set()
        for kind in ("startup", "liveness", "readiness"):
            probe = self.spec.get(f"{kind}Probe")
            if probe:
                tasks.append(loop.create_task(self._probe_loop(kind, probe, container, started)))
        return tasks

    async def _probe_loop(
        self, kind: str, probe: dict[str, Any], container: Container, started: asyncio.Event
    ) -> None:
        if kind != "startup":
            await started.wait()
        worker, record = self.worker, self.record
        target = probes.Target(worker.ip, self.spec)
        period = max(float(probe.get("periodSeconds") or 10), 1.0)
        success_needed = int(probe.get("successThreshold") or 1)
        failure_limit = int(probe.get("failureThreshold") or 3)
        fast_until = time.monotonic() + float(probe.get("initialDelaySeconds") or 0) + period
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        successes = failures = 0
        ever_passed = False

        async def run(argv: list[str], timeout: float) -> tuple[int, bytes]:
            return await worker.kubelet.runtime.exec(container, argv, timeout)

        while True:
            ok, message = await probes.check(probe, target, run)
            if not ok and kind != "liveness" and not ever_passed and time.monotonic() < fast_until:
                await asyncio.sleep(FAST_PROBE)  # the app is starting: look again soon, quietly
                continue
            ever_passed = ever_passed or ok
            if ok:
                successes, failures = successes + 1, 0
                if kind == "startup":
                    record.started = True
                    record.ready = not self.spec.get("readinessProbe")
                    started.set()
                    worker.publish()
                    return
                if kind == "readiness" and successes >= success_needed and not record.ready:
                    record.ready = True
                    worker.publish()
            else:
                successes, failures = 0, failures + 1
                self.event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}")
                if kind == "readiness" and failures >= failure_limit and record.ready:
                    record.ready = False
                    worker.publish()
                if kind != "readiness" and failures >= failure_limit:
                    await self._kill_for(kind, probe)
                    return
            await asyncio.sleep(period)

    async def _kill_for(self, kind: str, probe: dict[str, Any]) -> None:
        """Kill the container after its liveness or startup probe failed too often."""
        self.killed_by_probe = True
        self.event("Normal", "Killing", f"Container {self.name} failed {kind} probe, will be restarted")
        grace = probe.get("terminationGracePeriodSeconds")
        if grace is None:
            grace = self.worker.pod.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        if self.container is not None:
            await self.worker.kubelet.runtime.stop(self.container, float(grace))


TERMINATION_LOG = "/dev/termination-log"  # upstream's default terminationMessagePath
TERMINATION_LIMIT = 4096  # upstream keeps at most 4 KiB of a termination message


def _termination_log(base: Path, run: int) -> Path:
    """An empty file for one run's termination message, which the container sees at its
    terminationMessagePath."""
    path = base / f"{run}.termination-log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _read_termination_log(path: Path | None) -> str:
    """What the container wrote to its termination message file (at most 4 KiB)."""
    if path is None:
        return ""
    try:
        with path.open("rb") as f:
            return f.read(TERMINATION_LIMIT).decode(errors="replace")
    except OSError:
        return ""
