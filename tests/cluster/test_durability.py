"""Every acknowledged write survives ``kill -9`` of the daemon; watches from before a restart expire."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.cluster.support import assert_status, config_map, deployment, watch_events
from tests.conftest import Cluster, labkit


def _kill_9(c: Cluster) -> None:
    pid = int((c.home / "clusters" / c.name / "daemon.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state == "Z":
            return
        time.sleep(0.02)
    raise AssertionError(f"daemon {pid} survived SIGKILL")


def _restart(c: Cluster) -> str:
    """``labkit cluster up`` again; returns its output and points ``c`` at the (maybe new) port."""
    up = labkit("cluster", "up", "--name", c.name, home=c.home)
    config = yaml.safe_load(c.kubeconfig.read_text())
    c.server = config["clusters"][0]["cluster"]["server"]
    return up.stdout


def test_acknowledged_objects_survive_kill_9(spare_cluster: Callable[..., Cluster]) -> None:
    c = spare_cluster("durable")
    acked: dict[str, dict] = {}

    def write(method: str, path: str, body: dict, **kw: str) -> None:
        status, obj, _ = c.request(method, path, body, **kw)
        assert status in (200, 201), obj
        acked[path if method != "POST" else f"{path}/{obj['metadata']['name']}"] = obj

    assert c.request("POST", "/api/v1/namespaces", {"metadata": {"name": "shop"}})[0] == 201
    write("POST", "/apis/apps/v1/namespaces/shop/deployments", deployment("web", replicas=2))
    write(
        "PATCH",
        "/apis/apps/v1/namespaces/shop/deployments/web",
        {"spec": {"replicas": 4}},
        content_type="application/merge-patch+json",
    )
    for i in range(40):  # a burst of writes, the last acknowledged just before the kill
        write("POST", "/api/v1/namespaces/shop/configmaps", config_map(f"cm-{i}", i=str(i)))
    status, _, _ = c.request("DELETE", "/api/v1/namespaces/shop/configmaps/cm-0")
    assert status == 200
    del acked["/api/v1/namespaces/shop/configmaps/cm-0"]
    newest = max(int(o["metadata"]["resourceVersion"]) for o in acked.values())

    _kill_9(c)
    out = _restart(c)
    assert 'Starting cluster "durable"' in out

    for path, before in acked.items():
        status, after, _ = c.request("GET", path)
        assert status == 200, f"{path} was acknowledged but is gone after kill -9: {after}"
        if "/deployments/" in path:  # its controller keeps writing its status: compare what was written
            assert after["spec"] == before["spec"], f"{path} changed across kill -9"
            assert after["metadata"]["uid"] == before["metadata"]["uid"]
        else:
            assert after == before, f"{path} changed across kill -9"
    assert acked["/apis/apps/v1/namespaces/shop/deployments/web"]["spec"]["replicas"] == 4
    assert c.request("GET", "/api/v1/namespaces/shop/configmaps/cm-0")[0] == 404  # the delete stuck too
    status, listed, _ = c.request("GET", "/api/v1/namespaces/shop/configmaps")
    assert [i["metadata"]["name"] for i in listed["items"]] == sorted(f"cm-{i}" for i in range(1, 40))

    status, fresh, _ = c.request("POST", "/api/v1/namespaces/shop/configmaps", config_map("after"))
    assert status == 201, fresh
    assert int(fresh["metadata"]["resourceVersion"]) > newest
    assert int(listed["metadata"]["resourceVersion"]) >= newest
    status, nodes, _ = c.request("GET", "/api/v1/nodes")
    assert [n["metadata"]["name"] for n in nodes["items"]] == [
        "durable-control-plane",
        "durable-worker",
        "durable-worker2",
    ]


def test_a_watch_from_before_a_restart_gets_410_expired(spare_cluster: Callable[..., Cluster]) -> None:
    c = spare_cluster("expiry", nodes=1)
    status, old, _ = c.request("POST", "/api/v1/namespaces/default/configmaps", config_map("old"))
    assert status == 201
    old_rv = int(old["metadata"]["resourceVersion"])
    c.request(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/old",
        {"data": {"a": "b"}},
        content_type="application/merge-patch+json",
    )

    _kill_9(c)
    _restart(c)

    events = watch_events(
        c, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old_rv}&timeoutSeconds=5"
    )
    assert len(events) == 1, events
    assert events[0]["type"] == "ERROR"
    status = assert_status(events[0]["object"], 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {old_rv} (")

    # a watch from the current resourceVersion works, and a list gives one to start from
    _, listed, _ = c.request("GET", "/api/v1/namespaces/default/configmaps")
    rv = listed["metadata"]["resourceVersion"]
    c.request("DELETE", "/api/v1/namespaces/default/configmaps/old")
    events = watch_events(
        c, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "old")]
