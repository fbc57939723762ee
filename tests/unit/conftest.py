"""Fixtures shared by the embedded cluster's unit tests: a bootstrapped cluster store and its
context, without a daemon, an API server or a kubelet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.bootstrap import bootstrap
from labkit.embedded.context import ClusterContext
from labkit.embedded.state import ClusterConfig, ClusterDir
from labkit.embedded.store import Store


@pytest.fixture
def make_ctx(tmp_path: Path) -> Iterator[Callable[..., ClusterContext]]:
    """Make a cluster context: a store bootstrapped with ``nodes`` nodes like kind's (a tainted
    control plane and workers), its configuration from ``config`` (ClusterConfig fields), and
    the registry's eviction delay when ``toleration_seconds`` is given. Stores close afterwards."""
    stores: list[Store] = []

    def make(nodes: int = 3, *, toleration_seconds: int | None = None, **settings: Any) -> ClusterContext:
        store = Store(tmp_path / ("db" if not stores else f"db{len(stores)}"))
        stores.append(store)
        registry = Registry(store)
        if toleration_seconds is not None:
            registry.toleration_seconds = toleration_seconds  # as the daemon sets it
        bootstrap(registry, "lab", nodes)
        config = ClusterConfig("lab", nodes=nodes, **settings)
        return ClusterContext(registry, config, ClusterDir("lab", tmp_path))

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def ctx(make_ctx: Callable[..., ClusterContext]) -> ClusterContext:
    """A bootstrapped 3-node cluster store; no controllers running yet."""
    return make_ctx()
