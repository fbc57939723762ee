"""Fixtures of the embedded cluster's integration tests, on top of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Cluster, labkit, start_cluster


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
