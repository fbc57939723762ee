"""Clusters that run at once on one machine never share a pod IP, a ClusterIP or a node address.

Each takes an address block of its own (``labkit/embedded/addresses.py``) and keeps it; a
stopped cluster whose block another one holds says so when started, instead of handing out
addresses that are already answering for the other cluster.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable

import pytest

from labkit.embedded.addresses import CLAIM_PORT
from tests.cluster.pods_support import Kube, app_pod, real_port, running_and_ready, wait_until
from tests.conftest import Cluster, labkit


def _layout(kube: Kube) -> dict[str, set[str]]:
    nodes = kube.get("/api/v1/nodes")["items"]
    return {
        "kubernetes": {kube.get("/api/v1/namespaces/default/services/kubernetes")["spec"]["clusterIP"]},
        "nodes": {a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP"},
        "pod ranges": {n["spec"]["podCIDR"] for n in nodes},
    }


def test_two_running_clusters_have_their_own_addresses(cluster: Cluster, kube: Kube) -> None:
    other = Kube(kube.binary, cluster, kube.namespace)
    kube("create", "namespace", kube.namespace, check=False)
    other("create", "namespace", kube.namespace, check=False)
    try:
        mine, theirs = _layout(kube), _layout(other)
        for what in mine:
            assert not mine[what] & theirs[what], f"the clusters share {what}: {mine[what] & theirs[what]}"
        # the same pod in both: each answers at its own pod IP, as itself
        for k in (kube, other):
            k.apply(app_pod("twin"))
        pods = [
            wait_until("twin running", lambda k=k: k.pod("twin"), running_and_ready) for k in (kube, other)
        ]
        assert pods[0]["status"]["podIP"] != pods[1]["status"]["podIP"]
        for k, pod in zip((kube, other), pods, strict=True):
            host, port = real_port(pod)
            answer = wait_until(
                "the twin answers",
                lambda host=host, port=port: _get(host, port),
                lambda a: a is not None,
            )
            assert answer["ip"] == pod["status"]["podIP"], (k.cluster.name, answer)
    finally:
        other("delete", "pod", "twin", "--wait=false", check=False)
        other("delete", "namespace", kube.namespace, "--wait=false", check=False)


def _get(host: str, port: int) -> dict[str, str] | None:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/who", timeout=3) as r:
            return json.loads(r.read())
    except OSError:
        return None


def test_a_cluster_whose_addresses_are_taken_says_so(tuned_cluster: Callable[..., Cluster]) -> None:
    c = tuned_cluster("blocked")
    config = json.loads((c.home / "clusters" / c.name / "cluster.json").read_text())
    block = config["addresses"]
    assert isinstance(block, int)
    labkit("cluster", "down", "--name", c.name, home=c.home)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # another cluster, as the kernel sees it
    try:
        holder.bind((f"127.18.{block}.1", CLAIM_PORT))
    except OSError:
        holder.close()
        pytest.fail(f"block {block} should be free once its cluster is down")
    try:
        started = labkit("cluster", "up", "--name", c.name, home=c.home, check=False)
        told = started.stdout + started.stderr
        assert started.returncode != 0, told
        assert "in use by another embedded cluster" in told and "labkit cluster down" in told, told
        assert "Traceback" not in told, told
    finally:
        holder.close()
    labkit("cluster", "up", "--name", c.name, home=c.home)  # free again: it starts, on its own block
    again = json.loads((c.home / "clusters" / c.name / "cluster.json").read_text())
    assert again["addresses"] == block
