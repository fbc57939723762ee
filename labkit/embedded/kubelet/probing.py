"""A running container's probes: the startup, liveness and readiness loops, and what they change.

Startup gates the other two; readiness flips the container's ``ready``; a liveness or startup
probe that fails ``failureThreshold`` times in a row kills the container (its runner restarts
it). Before a probe first passes, within its first period, it is retried quickly and quietly,
so an app that starts fast is seen ready at once. Each probe itself runs in :mod:`probes`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from labkit.embedded.kubelet import probes
from labkit.embedded.kubelet.runtime import Container

if TYPE_CHECKING:
    from labkit.embedded.kubelet.containerhost import ContainerHost

FAST_PROBE = 0.1  # before a probe first succeeds, within its first period, retry this often


def start_probes(
    runner: ContainerHost, container: Container, started: asyncio.Event
) -> list[asyncio.Task[None]]:
    """Start the container's probe loops; ``started`` is set once its startup probe has passed
    (at once without one). The tasks, for the runner to cancel when the container ends."""
    loop = asyncio.get_running_loop()
    tasks = []
    if not runner.spec.get("startupProbe"):
        started.set()
    for kind in ("startup", "liveness", "readiness"):
        probe = runner.spec.get(f"{kind}Probe")
        if probe:
            tasks.append(loop.create_task(_probe_loop(runner, kind, probe, container, started)))
    return tasks


async def _probe_loop(
    runner: ContainerHost, kind: str, probe: dict[str, Any], container: Container, started: asyncio.Event
) -> None:
    if kind != "startup":
        await started.wait()
    worker, record = runner.worker, runner.record
    target = probes.Target(worker.ip, runner.spec)
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
                record.ready = not runner.spec.get("readinessProbe")
                started.set()
                worker.publish()
                return
            if kind == "readiness" and successes >= success_needed and not record.ready:
                record.ready = True
                worker.publish()
        else:
            successes, failures = 0, failures + 1
            runner.event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {message}")
            if kind == "readiness" and failures >= failure_limit and record.ready:
                record.ready = False
                worker.publish()
            if kind != "readiness" and failures >= failure_limit:
                await _kill_for(runner, kind, probe)
                return
        await asyncio.sleep(period)


async def _kill_for(runner: ContainerHost, kind: str, probe: dict[str, Any]) -> None:
    """Kill the container after its liveness or startup probe failed too often."""
    runner.killed_by_probe = True
    runner.event("Normal", "Killing", f"Container {runner.name} failed {kind} probe, will be restarted")
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is None:
        grace = runner.worker.pod.get("spec", {}).get("terminationGracePeriodSeconds", 30)
    if runner.container is not None:
        await runner.worker.kubelet.runtime.stop(runner.container, float(grace))
