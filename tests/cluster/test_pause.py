"""The lab recovers by itself: a suspended daemon (SIGSTOP, a closed laptop lid) comes back with
every node Ready and the same pods running, and a node marked Unknown while its kubelet runs is
reported Ready again by that kubelet (upstream's node status updates)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.cluster.pods_support import Kube, echo_deployment, running_and_ready, wait_until
from tests.conftest import KUBECTLS, Cluster


def _kube(cluster: Cluster) -> Kube:
    name = f"t-{uuid.uuid4().hex[:8]}"
    assert cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})[0] == 201
    return Kube(KUBECTLS["venv"], cluster, name)


def _ready(node: dict[str, Any]) -> str:
    return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")


def _nodes(c: Cluster) -> list[dict[str, Any]]:
    status, body, _ = c.request("GET", "/api/v1/nodes")
    assert status == 200, body
    return body["items"]


def test_a_four_second_sigstop_leaves_every_node_ready_and_every_pod_in_place(
    tuned_cluster: Callable[..., Cluster],
) -> None:
    c = tuned_cluster("paused")  # node grace 2 s, eviction after 2 s: a 4 s pause exceeds both
    kube = _kube(c)
    kube.apply(echo_deployment("web", replicas=3))
    pods = wait_until(
        "3 ready pods",
        lambda: kube.pods("app=web"),
        lambda ps: len(ps) == 3 and all(running_and_ready(p) for p in ps),
        timeout=20,
    )
    before = sorted(p["metadata"]["uid"] for p in pods)
    daemon = int((c.home / "clusters" / c.name / "daemon.pid").read_text())
    os.kill(daemon, signal.SIGSTOP)
    try:
        time.sleep(4)
    finally:
        os.kill(daemon, signal.SIGCONT)
    wait_until(
        "every node Ready", lambda: _nodes(c), lambda ns: all(_ready(n) == "True" for n in ns), timeout=10
    )
    after = wait_until(
        "the same 3 pods running and ready",
        lambda: kube.pods("app=web"),
        lambda ps: len(ps) == 3 and all(running_and_ready(p) for p in ps),
        timeout=10,
    )
    assert sorted(p["metadata"]["uid"] for p in after) == before, "no pod may be evicted by a pause"
    for node in _nodes(c):
        keys = {t["key"] for t in node["spec"].get("taints") or []}
        assert not keys & {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}, node["spec"]
    _, events, _ = c.request("GET", f"/api/v1/namespaces/{kube.namespace}/events")
    assert not [e for e in events["items"] if e["reason"] == "TaintManagerEviction"]


def test_a_node_marked_unknown_is_reported_ready_again_by_its_kubelet(
    tuned_cluster: Callable[..., Cluster],
) -> None:
    c = tuned_cluster("reported")
    name = f"{c.name}-worker"
    node = next(n for n in _nodes(c) if n["metadata"]["name"] == name)
    for condition in node["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition.update(
                status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status."
            )
    status, body, _ = c.request("PUT", f"/api/v1/nodes/{name}/status", node)
    assert status == 200 and _ready(body) == "Unknown", body
    wait_until(
        f"{name} Ready again",
        lambda: next(n for n in _nodes(c) if n["metadata"]["name"] == name),
        lambda n: _ready(n) == "True",
        timeout=10,
    )
