"""Pods as processes through their life: crashes, probes, kill -9, and the faults a learner makes.

Everything runs on ``fast_cluster`` (crash back-off from 0.5 s) with the virtualenv's kubectl,
each test in its own namespace. Each fault is checked for the state, reason and event a real
cluster gives, and for a message that says what is wrong.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from typing import Any

from tests.cluster.pods_support import (
    BUSYBOX,
    Kube,
    alive,
    app_pod,
    condition,
    echo_deployment,
    free_port,
    http,
    one_pid,
    pids_of,
    real_port,
    running_and_ready,
    status_of,
    wait_serving,
    wait_until,
    waiting_reason,
)


def _row(kube: Kube, pod: str) -> list[str]:
    """The cells of ``kubectl get pod POD``: NAME, READY, STATUS, RESTARTS, AGE."""
    out = kube("get", "pod", pod).stdout
    return re.split(r"\s{2,}", out.strip().splitlines()[1].strip())


def _events(kube: Kube, name: str, reason: str) -> list[str]:
    """The messages of the events of ``reason`` about the object ``name``."""
    return [e["message"] for e in kube.events(name) if e["reason"] == reason]


def _event(kube: Kube, name: str, reason: str, text: str, timeout: float = 8) -> str:
    """Wait for an event of ``reason`` about ``name`` whose message contains ``text``; its message."""
    messages = wait_until(
        f"a {reason} event containing {text!r}",
        lambda: _events(kube, name, reason),
        lambda found: any(text in m for m in found),
        timeout,
    )
    return next(m for m in messages if text in m)


def _restarts(pod: dict[str, Any]) -> int:
    return int(status_of(pod).get("restartCount", 0))


# -- crashes and probes ---------------------------------------------------------------------------


def test_a_container_that_exits_1_crash_loops_with_growing_delays(kube: Kube) -> None:
    kube.apply(app_pod("crash", image=BUSYBOX, command=["sh", "-c", "echo crashing now; exit 1"]))
    restarted_at: dict[int, float] = {}
    reasons: set[str] = set()

    def look() -> dict[str, Any]:
        pod = kube.pod("crash")
        restarted_at.setdefault(_restarts(pod), time.monotonic())
        reasons.add(waiting_reason(pod))
        return pod

    pod = wait_until("4 restarts", look, lambda p: _restarts(p) >= 4, timeout=15)
    gaps = [restarted_at[n + 1] - restarted_at[n] for n in (1, 2, 3)]  # back-off 0.5 s, 1 s, 2 s
    # each gap is the back-off plus the time a run takes (which a busy machine stretches):
    # the back-off grows by 0.5 s, then 1 s, so each gap outgrows the last by at least half that
    assert gaps[0] > 0.3 and gaps[1] - gaps[0] > 0.25 and gaps[2] - gaps[1] > 0.5, f"restart gaps {gaps}"
    assert "CrashLoopBackOff" in reasons

    pod = wait_until(
        "the back-off after 4 restarts", lambda: kube.pod("crash"), lambda p: bool(waiting_reason(p))
    )
    waiting = status_of(pod)["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    assert re.match(
        r"back-off 4s restarting failed container=app pod=crash_t-\w+\([-0-9a-f]+\)$", waiting["message"]
    )
    last = status_of(pod)["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (1, "Error")
    assert pod["status"]["phase"] == "Running" and condition(pod, "Ready") == "False"
    row = _row(kube, "crash")
    assert row[1:3] == ["0/1", "CrashLoopBackOff"] and row[3].startswith("4 ("), row
    backoff = _events(kube, "crash", "BackOff")
    assert backoff and backoff[0].startswith("Back-off restarting failed container app in pod crash_")
    assert kube("logs", "crash", "--previous").stdout == "crashing now\n"
    assert kube("logs", "crash").stdout == "crashing now\n"  # waiting to restart: the last run's output


def test_a_failing_liveness_probe_restarts_the_container(kube: Kube) -> None:
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1}
    kube.apply(
        app_pod("live", ports=[{"containerPort": 8080}], livenessProbe={**probe, "initialDelaySeconds": 1})
    )
    pod = wait_until("live running", lambda: kube.pod("live"), running_and_ready)
    port = real_port(pod)
    wait_serving(port)
    assert http(port, "/healthz/disable", "POST") == (200, {"healthy": False})

    pod = wait_until(
        "a restart after the liveness probe failed",
        lambda: kube.pod("live"),
        lambda p: _restarts(p) == 1 and running_and_ready(p),
    )
    assert (
        _event(kube, "live", "Unhealthy", "Liveness")
        == "Liveness probe failed: HTTP probe failed with statuscode: 500"
    )
    assert _events(kube, "live", "Killing") == ["Container app failed liveness probe, will be restarted"]
    assert real_port(pod) == port, "a restarted container keeps its port"
    wait_serving(port)
    assert http(port, "/healthz") == (200, {"status": "ok"}), "the new run is healthy"

    previous = kube("logs", "live", "--previous").stdout
    assert '"POST /healthz/disable HTTP/1.1" 200' in previous and '"GET /healthz HTTP/1.1" 500' in previous
    current = kube("logs", "live").stdout
    assert current.startswith("echo: listening on") and "/healthz/disable" not in current


def test_a_failing_readiness_probe_makes_the_pod_not_ready(kube: Kube) -> None:
    probe = {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1}
    kube.apply(echo_deployment("web", replicas=2, ports=[{"containerPort": 8080}], readinessProbe=probe))
    kube("rollout", "status", "deployment/web", "--timeout=20s")
    pod = kube.pods("app=web")[0]
    name = pod["metadata"]["name"]
    assert http(real_port(pod), "/readyz/disable", "POST") == (200, {"ready": False})

    pod = wait_until("the pod not ready", lambda: kube.pod(name), lambda p: condition(p, "Ready") == "False")
    assert pod["status"]["phase"] == "Running" and _restarts(pod) == 0  # readiness never restarts
    assert _row(kube, name)[1:3] == ["0/1", "Running"]
    assert (
        _event(kube, name, "Unhealthy", "Readiness")
        == "Readiness probe failed: HTTP probe failed with statuscode: 503"
    )
    deploy = wait_until(
        "the deployment one replica short",
        lambda: kube.deployment("web"),
        lambda d: d["status"].get("availableReplicas") == 1,
    )
    assert deploy["status"]["readyReplicas"] == 1 and deploy["status"]["unavailableReplicas"] == 1
    available = next(c for c in deploy["status"]["conditions"] if c["type"] == "Available")
    assert (available["status"], available["reason"], available["message"]) == (
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
    ), "2 replicas with maxUnavailable 25% (0) need both available"
    row = re.split(r"\s{2,}", kube("get", "deployment", "web").stdout.strip().splitlines()[1])
    assert row[1] == "1/2", row

    http(real_port(pod), "/readyz/enable", "POST")
    wait_until(
        "ready again", lambda: kube.deployment("web"), lambda d: d["status"].get("availableReplicas") == 2
    )


# -- kill -9 of a pod's process -------------------------------------------------------------------


def test_kill_9_of_a_pod_process_restarts_it_with_restart_policy_always(kube: Kube) -> None:
    kube.apply(app_pod("victim"))
    wait_until("victim running", lambda: kube.pod("victim"), running_and_ready)
    pid = one_pid(kube.cluster, "victim")
    os.kill(pid, signal.SIGKILL)

    pod = wait_until(
        "the container restarted",
        lambda: kube.pod("victim"),
        lambda p: _restarts(p) == 1 and running_and_ready(p),
    )
    last = status_of(pod)["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (137, "Error")
    assert one_pid(kube.cluster, "victim") != pid  # a new process, the app restarted
    assert _row(kube, "victim")[1:3] == ["1/1", "Running"]


def test_kill_9_with_restart_policy_never_fails_the_pod(kube: Kube) -> None:
    kube.apply(app_pod("once", restart_policy="Never"))
    wait_until("once running", lambda: kube.pod("once"), running_and_ready)
    pid = one_pid(kube.cluster, "once")
    os.kill(pid, signal.SIGKILL)

    pod = wait_until("the pod failed", lambda: kube.pod("once"), lambda p: p["status"]["phase"] == "Failed")
    terminated = status_of(pod)["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "Error")
    assert _restarts(pod) == 0 and condition(pod, "Ready") == "False"
    assert _row(kube, "once")[1:4] == ["0/1", "Error", "0"]
    time.sleep(1)  # nothing brings it back
    assert _restarts(kube.pod("once")) == 0 and not pids_of(kube.cluster, "once")


def test_a_deleted_pod_that_ignores_sigterm_is_terminating_for_its_grace_period(kube: Kube) -> None:
    pod = app_pod(
        "stubborn", image=BUSYBOX, command=["sh", "-c", "trap '' TERM; echo up; sleep 60 & wait; wait"]
    )
    pod["spec"]["terminationGracePeriodSeconds"] = 1
    kube.apply(pod)
    wait_until("stubborn running", lambda: kube.pod("stubborn"), running_and_ready)
    wait_until("its trap set", lambda: kube("logs", "stubborn").stdout, lambda out: "up" in out)
    pids = pids_of(kube.cluster, "stubborn")
    started = time.monotonic()
    kube("delete", "pod", "stubborn", "--wait=false")
    assert _row(kube, "stubborn")[2] == "Terminating"
    wait_until(
        "the pod gone", lambda: [p["metadata"]["name"] for p in kube.pods()], lambda names: names == []
    )
    took = time.monotonic() - started
    assert 0.8 < took < 4, (
        f"SIGTERM was ignored, so SIGKILL should come after the 1 s grace period, not {took:.1f} s"
    )
    assert not any(alive(pid) for pid in pids)
    assert "Stopping container app" in _events(kube, "stubborn", "Killing")


# -- bad input and faults -------------------------------------------------------------------------


def test_a_missing_image_is_err_image_pull_then_image_pull_backoff(kube: Kube) -> None:
    kube.apply(app_pod("ghost", image="nosuch/app:1.0"))
    reasons: set[str] = set()

    def look() -> set[str]:
        reasons.add(waiting_reason(kube.pod("ghost")))
        return reasons

    wait_until("ErrImagePull and ImagePullBackOff", look, lambda r: {"ErrImagePull", "ImagePullBackOff"} <= r)
    pod = kube.pod("ghost")
    assert pod["status"]["phase"] == "Pending" and _row(kube, "ghost")[2] in (
        "ErrImagePull",
        "ImagePullBackOff",
    )

    failed = _event(kube, "ghost", "Failed", "Failed to pull image")
    assert failed.startswith('Failed to pull image "nosuch/app:1.0": ')
    assert "labkit/echo" in failed and "busybox" in failed, "the message names the images that exist"
    failures = _events(kube, "ghost", "Failed")
    assert "Error: ErrImagePull" in failures and "Error: ImagePullBackOff" in failures
    assert 'Back-off pulling image "nosuch/app:1.0"' in _events(kube, "ghost", "BackOff")

    logs = kube("logs", "ghost", check=False)
    assert logs.returncode == 1
    assert (
        'container "app" in pod "ghost" is waiting to start: trying and failing to pull image' in logs.stderr
    )


def test_an_impossible_node_selector_stays_pending_until_a_node_matches(kube: Kube) -> None:
    manifest = app_pod("nowhere")
    manifest["spec"]["nodeSelector"] = {"disktype": "ssd"}
    kube.apply(manifest)
    message = _event(kube, "nowhere", "FailedScheduling", "0/3 nodes are available")
    assert message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    pod = kube.pod("nowhere")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert _row(kube, "nowhere")[1:3] == ["0/1", "Pending"]
    assert "FailedScheduling" in kube("describe", "pod", "nowhere").stdout

    node = f"{kube.cluster.name}-worker2"
    kube("label", "node", node, "disktype=ssd")  # what the message asks for: a node that matches
    try:
        pod = wait_until("the pod scheduled", lambda: kube.pod("nowhere"), running_and_ready)
        assert pod["spec"]["nodeName"] == node
    finally:
        kube("label", "node", node, "disktype-")


def test_an_image_absent_with_pull_policy_never_is_err_image_never_pull(kube: Kube) -> None:
    kube.apply(app_pod("never", image="nosuch/app:1.0", imagePullPolicy="Never"))
    pod = wait_until(
        "ErrImageNeverPull", lambda: kube.pod("never"), lambda p: waiting_reason(p) == "ErrImageNeverPull"
    )
    message = 'Container image "nosuch/app:1.0" is not present with pull policy of Never'
    assert status_of(pod)["state"]["waiting"]["message"] == message
    assert message in _events(kube, "never", "ErrImageNeverPull")
    assert _row(kube, "never")[1:3] == ["0/1", "ErrImageNeverPull"]


def test_a_missing_config_map_is_create_container_config_error_until_it_exists(kube: Kube) -> None:
    env = [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}}]
    kube.apply(
        app_pod("configured", image=BUSYBOX, command=["sh", "-c", "echo $GREETING; sleep 60"], env=env)
    )
    pod = wait_until(
        "CreateContainerConfigError",
        lambda: kube.pod("configured"),
        lambda p: waiting_reason(p) == "CreateContainerConfigError",
    )
    assert status_of(pod)["state"]["waiting"]["message"] == 'configmap "settings" not found'
    assert 'Error: configmap "settings" not found' in _events(kube, "configured", "Failed")
    assert _row(kube, "configured")[1:3] == ["0/1", "CreateContainerConfigError"]

    kube("create", "configmap", "settings", "--from-literal=greeting=hello")  # the fix
    wait_until("the pod running", lambda: kube.pod("configured"), running_and_ready)
    wait_until("its output", lambda: kube("logs", "configured").stdout, lambda out: out == "hello\n")


def test_a_command_not_found_is_run_container_error(kube: Kube) -> None:
    kube.apply(app_pod("typo", image=BUSYBOX, command=["sleepy", "10"]))
    pod = wait_until(
        "RunContainerError", lambda: kube.pod("typo"), lambda p: waiting_reason(p) == "RunContainerError"
    )
    last = status_of(pod)["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (128, "StartError")
    assert 'exec: "sleepy": executable file not found in $PATH' in last["message"]
    failed = _event(kube, "typo", "Failed", "sleepy")
    assert (
        failed
        == 'Error: failed to start container process: exec: "sleepy": executable file not found in $PATH'
    )
    assert _row(kube, "typo")[1:3] == ["0/1", "RunContainerError"]


def test_a_port_taken_by_another_process_crash_loops_with_a_hint(kube: Kube) -> None:
    """The kubelet lets a pod's env override ``PORT``: the echo server then binds a port this test
    holds, as an app with a fixed port would."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kube.apply(app_pod("clash", env=[{"name": "PORT", "value": str(port)}]))
        pod = wait_until(
            "a crash loop",
            lambda: kube.pod("clash"),
            lambda p: _restarts(p) >= 1 and waiting_reason(p) == "CrashLoopBackOff",
        )
        last = status_of(pod)["lastState"]["terminated"]
        assert (last["exitCode"], last["reason"]) == (1, "Error")
        assert "port is already in use" in last["message"]
        assert "port is already in use" in _event(kube, "clash", "BackOff", "Back-off restarting")
        logs = kube("logs", "clash", "--previous").stdout
        assert f"echo: cannot listen on 0.0.0.0:{port}: [Errno 98] Address already in use" in logs


def test_a_probe_on_a_closed_port_never_gets_ready(kube: Kube) -> None:
    closed = free_port()
    kube.apply(app_pod("deaf", readinessProbe={"tcpSocket": {"port": closed}, "periodSeconds": 1}))
    seen_ready: list[str] = []

    def look() -> dict[str, Any]:
        pod = kube.pod("deaf")
        seen_ready.append(condition(pod, "Ready"))
        return pod

    pod = wait_until("the pod running", look, lambda p: p["status"]["phase"] == "Running")
    ip = pod["status"]["podIP"]
    message = _event(kube, "deaf", "Unhealthy", "Readiness")
    assert message == f"Readiness probe failed: dial tcp {ip}:{closed}: connect: connection refused"
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        look()
        time.sleep(0.1)
    assert "True" not in seen_ready
    assert _row(kube, "deaf")[1:4] == ["0/1", "Running", "0"]
