"""Service traffic end to end: 3 echo replicas behind a Service, thousands of real requests
through each route, measured with labkit's traffic tool (labkit.kube.traffic)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from labkit.errors import ClusterError, UsageError
from labkit.kube.client import KubeClient
from labkit.kube.traffic import TrafficRun, traffic
from tests.cluster.pods_support import Kube, echo_deployment, http, pids_of, real_port, wait_until
from tests.conftest import KUBECTLS, Cluster

N = 3000
READY = {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1, "timeoutSeconds": 5}


def _service(name: str, kind: str = "ClusterIP", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": kind,
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 8080, "targetPort": 8080}],
            **spec,
        },
    }


@pytest.fixture(scope="module")
def web(fast_cluster: Cluster) -> Iterator[tuple[Kube, KubeClient]]:
    """3 echo replicas (with a readiness probe) behind a NodePort Service "web", in their own namespace."""
    ns = "traffic"
    status, body, _ = fast_cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    assert status == 201, body
    kube = Kube(KUBECTLS["venv"], fast_cluster, ns)
    kube.apply(
        echo_deployment("web", replicas=3, ports=[{"containerPort": 8080}], readinessProbe=READY),
        _service("web", "NodePort"),
    )
    kube("rollout", "status", "deployment/web", "--timeout=20s")
    client = KubeClient(fast_cluster.kubeconfig)
    wait_until("3 ready endpoints", lambda: _ready(kube), lambda n: n == 3)
    yield kube, client
    fast_cluster.request("DELETE", f"/api/v1/namespaces/{ns}")


def _ready(kube: Kube) -> int:
    endpoints = kube.get("endpoints/web")
    return sum(len(s.get("addresses") or []) for s in endpoints.get("subsets") or [])


def _counts(result: Any) -> dict[str, int]:
    frame = result.frame
    assert frame["error"].isna().all(), frame[frame["error"].notna()].head()
    return frame["pod"].value_counts().to_dict()


def test_round_robin_gives_each_replica_a_third_exactly(web: tuple[Kube, KubeClient]) -> None:
    _, client = web
    result = traffic(client, "web", N, namespace="traffic", via="service", mode="round-robin")
    counts = _counts(result)
    assert result.source == "records" and result.via == "service"
    assert len(counts) == 3 and all(abs(c - N / 3) <= 1 for c in counts.values()), counts
    summary = result.summary()
    assert summary["requests"].sum() == N and set(summary["node"]) <= {"fast-worker", "fast-worker2"}


@pytest.mark.parametrize("via", ["service", "nodeport", "proxy"])
def test_a_run_in_batches_finds_every_requests_pod(web: tuple[Kube, KubeClient], via: str) -> None:
    """What a live widget does: send in batches, read who served each after every batch."""
    _, client = web
    run = TrafficRun(client, "web", namespace="traffic", via=via, mode="round-robin")
    batches = [run.send(30) for _ in range(3)]
    assert [len(b) for b in batches] == [30, 30, 30]
    assert [s.i for b in batches for s in b] == list(range(90))  # numbered across batches
    assert all(s.pod for b in batches for s in b), [s for b in batches for s in b if not s.pod][:3]
    result = run.result()
    assert result.source == "records" and len(result) == 90
    counts = _counts(result)
    assert len(counts) == 3 and sum(counts.values()) == 90, counts
    if via != "proxy":  # the API server's proxy picks a pod per request at random, as upstream's does
        assert all(c == 30 for c in counts.values()), counts  # round robin, exactly


def test_a_keep_alive_run_in_batches_stays_on_its_pod(web: tuple[Kube, KubeClient]) -> None:
    """One keep-alive connection across batches: its one record names the pod of every request."""
    _, client = web
    run = TrafficRun(client, "web", namespace="traffic", via="service", keep_alive=True)
    pods = {s.pod for _ in range(3) for s in run.send(20)}
    result = run.result()
    assert len(pods) == 1 and None not in pods, pods
    assert {s.conn for s in result.samples} == {1}  # one connection for all 60
    assert any("keep-alive" in note for note in result.notes), result.notes


def test_random_stays_within_ten_percent(web: tuple[Kube, KubeClient]) -> None:
    _, client = web
    counts = _counts(traffic(client, "web", N, namespace="traffic", via="service", mode="random"))
    assert len(counts) == 3 and all(abs(c - N / 3) <= N / 30 for c in counts.values()), counts


def test_client_ip_affinity_pins_one_client_to_one_replica(web: tuple[Kube, KubeClient]) -> None:
    _, client = web
    try:
        result = traffic(client, "web", 300, namespace="traffic", via="service", mode="client-ip")
        assert len(_counts(result)) == 1
    finally:
        traffic(client, "web", 1, namespace="traffic", mode="round-robin")


def test_nodeport_balances_the_same(web: tuple[Kube, KubeClient]) -> None:
    _, client = web
    counts = _counts(traffic(client, "web", N, namespace="traffic", via="nodeport", mode="round-robin"))
    assert len(counts) == 3 and all(abs(c - N / 3) <= 1 for c in counts.values()), counts


def test_the_api_server_proxy_picks_a_replica_per_request(web: tuple[Kube, KubeClient]) -> None:
    _, client = web
    result = traffic(client, "web", N, namespace="traffic", via="proxy", keep_alive=True)
    counts = _counts(result)
    assert result.via == "proxy"
    assert len(counts) == 3 and all(abs(c - N / 3) <= N / 30 for c in counts.values()), counts


def test_a_keep_alive_connection_sticks_to_one_replica(web: tuple[Kube, KubeClient]) -> None:
    _, client = web
    result = traffic(client, "web", 200, namespace="traffic", via="service", keep_alive=True, mode="random")
    assert len(_counts(result)) == 1  # kube-proxy balances connections, not requests
    assert any("kube-proxy balances connections, not requests" in note for note in result.notes)


def test_a_pinned_connection_like_port_forward_hits_one_pod(web: tuple[Kube, KubeClient]) -> None:
    _, client = web
    result = traffic(client, "web", 100, namespace="traffic", via="pinned")
    assert len(_counts(result)) == 1
    assert any("port-forward" in note and "one pod" in note for note in result.notes)


def test_a_replica_that_is_not_ready_gets_no_traffic(web: tuple[Kube, KubeClient]) -> None:
    kube, client = web
    pods = kube.pods("app=web")
    victim = pods[0]
    http(real_port(victim), "/readyz/disable", "POST")
    try:
        wait_until("the not-ready replica leaves the endpoints", lambda: _ready(kube), lambda n: n == 2)
        counts = _counts(traffic(client, "web", 600, namespace="traffic", via="service", mode="round-robin"))
        assert victim["metadata"]["name"] not in counts
        assert sorted(counts.values()) == [300, 300]
    finally:
        http(real_port(victim), "/readyz/enable", "POST")
        wait_until("3 ready endpoints again", lambda: _ready(kube), lambda n: n == 3)


def test_killing_a_replica_mid_run_costs_few_errors(web: tuple[Kube, KubeClient]) -> None:
    kube, client = web
    victim = kube.pods("app=web")[1]["metadata"]["name"]
    pids = pids_of(kube.cluster, victim)
    assert pids

    def kill_soon() -> None:
        time.sleep(0.3)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    threading.Thread(target=kill_soon).start()
    result = traffic(client, "web", 1000, namespace="traffic", via="service", mode="round-robin")
    print(f"errors while a replica was killed: {result.errors} of 1000")  # reported in the issue note
    assert result.errors <= 20, result.frame[result.frame["error"].notna()]["error"].value_counts()
    wait_until("3 ready endpoints again", lambda: _ready(kube), lambda n: n == 3, timeout=20)


def test_a_service_that_selects_nothing_fails_fast_and_says_why(web: tuple[Kube, KubeClient]) -> None:
    kube, client = web
    kube.apply(_service("nobody"))
    start = time.monotonic()
    result = traffic(client, "nobody", 20, namespace="traffic", via="service")
    assert time.monotonic() - start < 5
    assert result.errors == 20
    assert any("no ready endpoints" in note for note in result.notes)
    proxied = traffic(client, "nobody", 5, namespace="traffic", via="proxy")
    assert {s.status for s in proxied.samples} == {503}


def test_unknown_routes_and_services_are_clear_errors(web: tuple[Kube, KubeClient]) -> None:
    _, client = web
    with pytest.raises(UsageError, match="unknown route"):
        traffic(client, "web", 1, namespace="traffic", via="teleport")
    with pytest.raises(ClusterError, match='services "ghost" not found'):
        traffic(client, "ghost", 1, namespace="traffic")
    with pytest.raises(UsageError, match="no nodePort"):
        traffic(client, "nobody", 1, namespace="traffic", via="nodeport")


def test_node_ports_out_of_range_or_taken_are_refused(web: tuple[Kube, KubeClient]) -> None:
    kube, _ = web
    taken = kube.get("services/web")["spec"]["ports"][0]["nodePort"]
    for port, message in (
        (29999, "provided port is not in the valid range"),
        (taken, "provided port is already allocated"),
    ):
        svc = _service("clash", "NodePort")
        svc["spec"]["ports"][0]["nodePort"] = port
        status, body, _ = kube.cluster.request("POST", "/api/v1/namespaces/traffic/services", svc)
        assert status == 422 and body["reason"] == "Invalid", body
        assert (
            message in body["message"] and body["details"]["causes"][0]["field"] == "spec.ports[0].nodePort"
        )
