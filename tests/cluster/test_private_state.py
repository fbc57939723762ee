"""A cluster's state (every Secret is in store.db, the token opens the API) is private to its
owner: the directory 0700 and its files 0600, checked and fixed at every start."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from labkit.embedded.state import ClusterDir
from tests.cluster.pods_support import BUSYBOX, wait_until
from tests.conftest import Cluster, labkit

PRIVATE_FILES = ("store.db", "store.db-wal", "daemon.log", "token", "kubeconfig", "cluster.json")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_to_others(root: Path) -> list[str]:
    return [
        f"{p} {oct(_mode(p))}" for p in [root, *root.rglob("*")] if not p.is_symlink() and _mode(p) & 0o077
    ]


def _pod_logs(c: Cluster) -> list[Path]:
    return list((c.home / "clusters" / c.name / "pods").rglob("*.log"))


def test_state_directory_and_files_are_private(spare_cluster: Callable[..., Cluster]) -> None:
    c = spare_cluster("private", nodes=1)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "talker"},
        "spec": {
            "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c", "echo hi; sleep 3600"]}]
        },
    }
    assert c.request("POST", "/api/v1/namespaces/default/pods", pod)[0] == 201
    assert c.request("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}})[0] == 201
    logs = wait_until("the pod's log file", lambda: _pod_logs(c), bool, timeout=20)
    state = c.home / "clusters" / c.name
    assert _mode(state) == 0o700
    for name in PRIVATE_FILES:
        assert _mode(state / name) == 0o600, name
    for log in logs:
        assert _mode(log) == 0o600, log
    assert _mode(state / "pods") == 0o700
    # files the daemon keeps directly in the directory; what pods write lies behind 0700 directories
    assert [p for p in _open_to_others(state) if Path(p.split()[0]).parent == state] == []


def test_a_start_makes_an_opened_state_private_again(spare_cluster: Callable[..., Cluster]) -> None:
    c = spare_cluster("reopened", nodes=1)
    state = c.home / "clusters" / c.name
    labkit("cluster", "down", "--name", c.name, home=c.home)
    state.chmod(0o755)
    for name in ("store.db", "token", "kubeconfig"):
        (state / name).chmod(0o644)
    labkit("cluster", "up", "--name", c.name, home=c.home)
    assert _mode(state) == 0o700
    assert _open_to_others(state) == []


def test_paths_that_cannot_be_fixed_are_warned_about(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = ClusterDir("warned", tmp_path)
    cluster.path.mkdir(parents=True)
    (cluster.path / "token").write_text("t")
    (cluster.path / "token").chmod(0o644)

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("labkit.embedded.state.os.chmod", refuse)
    warnings = cluster.make_private()
    assert any("token" in w and "chmod -R go-rwx" in w for w in warnings), warnings
