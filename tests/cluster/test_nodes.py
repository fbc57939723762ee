"""Nodes and the daemon under faults: a worker powered off and on, the daemon killed and restarted,
and ``labkit cluster down``. Each test has its own cluster (fast eviction), as it disrupts it."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Callable

import yaml

from tests.cluster.pods_support import (
    Kube,
    alive,
    app_pod,
    condition,
    echo_deployment,
    http,
    one_pid,
    pod_processes,
    real_port,
    running_and_ready,
    wait_serving,
    wait_until,
)
from tests.conftest import KUBECTLS, Cluster, labkit


def _kube(cluster: Cluster) -> Kube:
    """The virtualenv's kubectl in a new namespace of ``cluster``."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    status, body, _ = cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    return Kube(KUBECTLS["venv"], cluster, name)


def _node(kube: Kube, name: str) -> dict:
    return dict(kube.get(f"/api/v1/nodes/{name}"))


def _node_row(kube: Kube, name: str) -> list[str]:
    return re.split(r"\s{2,}", kube("get", "node", name).stdout.strip().splitlines()[1])


def _ready_pods(kube: Kube, count: int, timeout: float = 10) -> list[dict]:
    """Wait until ``count`` pods of app=web are Running and Ready (others may be terminating)."""
    return wait_until(
        f"{count} ready web pods",
        lambda: [p for p in kube.pods("app=web") if running_and_ready(p)],
        lambda pods: len(pods) == count,
        timeout,
    )


def test_stopping_a_worker_moves_its_pods_and_starting_it_brings_it_back(
    tuned_cluster: Callable[..., Cluster],
) -> None:
    c = tuned_cluster("nodes")
    kube = _kube(c)
    worker, worker2 = f"{c.name}-worker", f"{c.name}-worker2"
    kube.apply(echo_deployment("web", replicas=2))
    pods = _ready_pods(kube, 2)
    assert sorted(p["spec"]["nodeName"] for p in pods) == [worker, worker2]
    moved = next(p for p in pods if p["spec"]["nodeName"] == worker)
    name = moved["metadata"]["name"]
    pid = one_pid(c, name)

    unknown = labkit("node", "stop", "nosuch", "--name", c.name, home=c.home, check=False)
    assert unknown.returncode == 1
    assert f'error: cluster "{c.name}" has no node "nosuch"' in unknown.stderr
    assert f"{c.name}-control-plane, {c.name}-worker, {c.name}-worker2" in unknown.stderr, "names the nodes"

    out = labkit("node", "stop", worker, "--name", c.name, home=c.home).stdout
    assert f'Node "{worker}" is stopped' in out and "evicted 2 s later" in out
    wait_until("the stopped node's container gone", lambda: alive(pid), lambda alive: not alive, timeout=3)
    wait_until("the node NotReady", lambda: condition(_node(kube, worker), "Ready"), lambda s: s != "True")
    assert _node_row(kube, worker)[1] == "NotReady"

    started = time.monotonic()
    pods = _ready_pods(kube, 2, timeout=10)
    assert {p["spec"]["nodeName"] for p in pods} == {worker2}, (
        "replaced on the other worker, not the control plane"
    )
    assert name not in {p["metadata"]["name"] for p in pods}
    assert time.monotonic() - started < 8
    evicted = kube.pod(name)
    assert evicted["metadata"].get("deletionTimestamp"), (
        "the evicted pod is Terminating until its node is back"
    )
    assert any(e["reason"] == "TaintManagerEviction" for e in kube.events(name))
    disruption = next(c for c in evicted["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (disruption["status"], disruption["reason"]) == ("True", "DeletionByTaintManager")
    assert condition(evicted, "Ready") == "False", "the node controller marks the pods of a NotReady node"
    taints = {(t["key"], t["effect"]) for t in _node(kube, worker)["spec"].get("taints", [])}
    assert ("node.kubernetes.io/unreachable", "NoExecute") in taints

    out = labkit("node", "start", worker, "--name", c.name, home=c.home).stdout
    assert f'Node "{worker}" is running again and Ready' in out
    assert _node_row(kube, worker)[1] == "Ready"
    wait_until(
        "the evicted pod removed by its kubelet",
        lambda: [p["metadata"]["name"] for p in kube.pods("app=web")],
        lambda names: name not in names and len(names) == 2,
    )
    node_events = [
        e["reason"]
        for e in kube.get(f"/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3D{worker}")[
            "items"
        ]
    ]
    assert "NodeNotReady" in node_events and "NodeReady" in node_events, node_events
    wait_until("the taints gone", lambda: _node(kube, worker)["spec"].get("taints") or [], lambda t: t == [])


def test_pods_run_again_after_kill_9_of_the_daemon_and_down_leaves_no_process(
    tuned_cluster: Callable[..., Cluster],
) -> None:
    c = tuned_cluster("durable-pods")
    kube = _kube(c)
    kube.apply(echo_deployment("web", replicas=2), app_pod("solo"))
    _ready_pods(kube, 2)
    wait_until("solo running", lambda: kube.pod("solo"), running_and_ready)
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in kube.pods()}
    deploy_uid = kube.deployment("web")["metadata"]["uid"]
    # Ready comes as the container starts, a moment before the sandbox execs the app
    old_pids = set(wait_until("3 app processes", lambda: pod_processes(c), lambda p: len(p) == 3))

    daemon = int((c.home / "clusters" / c.name / "daemon.pid").read_text())
    os.kill(daemon, signal.SIGKILL)
    wait_until("the daemon dead", lambda: alive(daemon), lambda alive: not alive, timeout=5)
    labkit("cluster", "up", "--name", c.name, home=c.home)
    c.server = yaml.safe_load(c.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]

    assert kube.deployment("web")["metadata"]["uid"] == deploy_uid
    pods = wait_until(
        "every pod running again",
        lambda: kube.pods(),
        lambda ps: len(ps) == 3 and all(running_and_ready(p) for p in ps),
    )
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods} == before, (
        "the same pods, not new ones"
    )
    now = wait_until(
        "an app process for each pod",
        lambda: pod_processes(c),
        lambda found: sorted(env["HOSTNAME"] for env in found.values()) == sorted(before),
        timeout=30,  # the new daemon starts the pods' containers again (on 2 busy cores, seconds)
    )
    assert not old_pids & set(now), "a pod process from before the kill survived it"
    solo = kube.pod("solo")
    wait_serving(real_port(solo))
    assert http(real_port(solo), "/")[1]["pod"] == "solo"

    labkit("cluster", "down", "--name", c.name, home=c.home)
    assert pod_processes(c) == {}, "labkit cluster down left pod processes behind"
