"""A legal but huge Deployment (100,000 replicas on 3 nodes) does not take the cluster down:
pods are created at a limited rate, those beyond the nodes' 110-pod capacity wait Pending with
FailedScheduling, the ReplicaSet's events are aggregated, and the API keeps answering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.cluster.pods_support import wait_until
from tests.cluster.support import deployment
from tests.conftest import Cluster

NS = "default"


def _pods(c: Cluster) -> list[dict[str, Any]]:
    status, body, _ = c.request("GET", f"/api/v1/namespaces/{NS}/pods", timeout=30)
    assert status == 200, body
    return body["items"]


def _events(c: Cluster, reason: str) -> list[dict[str, Any]]:
    status, body, _ = c.request(
        "GET", f"/api/v1/namespaces/{NS}/events?fieldSelector=reason%3D{reason}", timeout=30
    )
    assert status == 200, body
    return body["items"]


def test_a_hundred_thousand_replicas_leave_the_cluster_responsive(
    spare_cluster: Callable[..., Cluster],
) -> None:
    c = spare_cluster("storm", nodes=3)
    dep = deployment("storm", replicas=100_000, image="busybox:1.36")
    dep["spec"]["template"]["metadata"]["annotations"] = {"labkit.dev/runtime": "simulated"}
    assert c.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", dep)[0] == 201

    def bound(pods: list[dict[str, Any]]) -> int:
        return sum(1 for p in pods if p["spec"].get("nodeName"))

    # the two workers fill up to their capacity (110 pods each); the control plane is tainted
    pods = wait_until("both workers full", lambda: _pods(c), lambda ps: bound(ps) >= 220, timeout=60)
    failed = wait_until("FailedScheduling events", lambda: _events(c, "FailedScheduling"), bool, timeout=30)
    assert any("Too many pods" in e["message"] for e in failed), failed[0]["message"]

    pods = _pods(c)
    assert bound(pods) == 220, "no node may run more than its 110 pods"
    pending = [p for p in pods if not p["spec"].get("nodeName")]
    assert pending and all(p["status"]["phase"] == "Pending" for p in pending)
    assert len(pods) < 20_000, "pods are created at a limited rate, not all at once"

    created = _events(c, "SuccessfulCreate")
    assert 1 <= len(created) <= 11, [e["message"] for e in created]
    combined = [
        e for e in created if e["message"].startswith("(combined from similar events): Created pod: ")
    ]
    assert len(combined) == 1 and combined[0]["count"] > 1, [e["message"] for e in created]

    for i in range(20):  # the API answers reads and writes throughout
        assert c.request("GET", "/api/v1/nodes", timeout=10)[0] == 200
        cm = {"metadata": {"name": f"still-{i}"}, "data": {"i": str(i)}}
        assert c.request("POST", f"/api/v1/namespaces/{NS}/configmaps", cm, timeout=10)[0] == 201
