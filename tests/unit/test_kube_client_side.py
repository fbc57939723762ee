"""The client side's HTTP layer, models and reset record against a scripted API server
(``MockTransport``): what kube/ and the Lab build from answers, without a daemon."""

from __future__ import annotations

from typing import Any

import pytest

from labkit.errors import ClusterError, UsageError
from labkit.kube import listing, tracking
from labkit.kube.apply import Manifest
from labkit.kube.http import Api, Endpoint, MockTransport, expect_ok

ENDPOINT = Endpoint("https://127.0.0.1:6443", None, {"Authorization": "Bearer t"})


def pod_row(name: str, node: str, ready: str, owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "controller": True}]
        meta["labels"]["pod-template-hash"] = owner.rsplit("-", 1)[1]
    cells = [name, ready, "Running", "2 (5s ago)", "3m", "10.0.0.1", node]
    return {"cells": cells, "object": {"metadata": meta, "status": {"phase": "Running"}}}


def pods_table(*rows: dict[str, Any]) -> dict[str, Any]:
    columns = ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"]
    return {"kind": "Table", "columnDefinitions": [{"name": c} for c in columns], "rows": list(rows)}


def test_pods_become_models_and_a_frame_with_the_columns_a_learner_reads() -> None:
    table = pods_table(pod_row("web-1", "w2", "1/1", "web-7d9f"), pod_row("solo", "w1", "0/1"))
    api = Api(ENDPOINT, MockTransport(lambda method, path, body, headers: (200, table)))
    pods = listing.pods(api, "default")
    assert [p.name for p in pods] == ["solo", "web-1"]  # sorted by name
    web = pods.on("w2")[0]
    assert (web.owner, web.restarts, web.is_ready, web.node) == ("Deployment/web", 2, True, "w2")
    assert not pods.on("w1")[0].is_ready
    frame = pods.frame()
    assert list(frame.columns) == ["name", "ready", "status", "restarts", "node", "ip", "age"]
    assert frame["ready"].tolist() == ["0/1", "1/1"]
    with pytest.raises(AttributeError):
        web.name = "changed"  # type: ignore[misc]  # models are frozen: widgets can share them
    sent = api.transport.requests  # type: ignore[attr-defined]
    assert sent[0][1].startswith("/api/v1/namespaces/default/pods?includeObject=Object")
    assert "as=Table" in sent[0][3]["Accept"] and sent[0][3]["Authorization"] == "Bearer t"


def test_a_server_that_does_not_answer_is_one_cluster_error_with_the_hint() -> None:
    def refuse(method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        raise ConnectionRefusedError(111, "Connection refused")

    api = Api(ENDPOINT, MockTransport(refuse), hint="see its log: /x/daemon.log")
    with pytest.raises(ClusterError) as err:
        listing.nodes(api, None)
    assert "https://127.0.0.1:6443 does not answer" in str(err.value)
    assert err.value.hint == "see its log: /x/daemon.log"


def test_error_answers_name_what_was_missing_and_where() -> None:
    with pytest.raises(UsageError, match='deployment "web" not found in namespace team-a'):
        expect_ok(404, {"message": "nope"}, 'deployment "web"', "team-a")
    with pytest.raises(ClusterError, match="forbidden: no"):
        expect_ok(403, {"message": "forbidden: no"}, 'pod "x"')
    expect_ok(200, {}, "anything")


def test_the_record_stamps_labels_and_keeps_the_users_own() -> None:
    record = tracking.Record("abc123")
    manifest = Manifest({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "c", "labels": {"app": "web"}}}, 1, 1)  # fmt: skip
    stamped = record.stamp(manifest)
    assert stamped.obj["metadata"]["labels"] == {
        "app": "web", "labkit.dev/managed-by": "labkit", "labkit.dev/session": "abc123",
    }  # fmt: skip
    assert manifest.obj["metadata"]["labels"] == {"app": "web"}  # the user's text is not changed
    assert tracking.session_id("/home/me/workshop.ipynb") == tracking.session_id("/home/me/workshop.ipynb")
    assert tracking.session_id("/a.ipynb") != tracking.session_id("/b.ipynb")


class FakeCluster:
    """Discovery for v1 and apps/v1, and a few objects; deletes remove them."""

    def __init__(self) -> None:
        self.objects = {
            "/api/v1/namespaces/default/configmaps/old": {"name": "old", "session": "s1"},
            "/api/v1/namespaces/team-a/configmaps/other": {"name": "other", "session": "s2"},
            "/apis/apps/v1/namespaces/default/deployments/web": {"name": "web", "session": "s1"},
        }

    def __call__(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        base, _, query = path.partition("?")
        if base == "/apis":
            return 200, {"groups": [{"preferredVersion": {"groupVersion": "apps/v1"}}]}
        if base in ("/api/v1", "/apis/apps/v1"):
            kinds = {"/api/v1": [("ConfigMap", "configmaps"), ("Event", "events")],
                     "/apis/apps/v1": [("Deployment", "deployments")]}[base]  # fmt: skip
            return 200, {"resources": [{"kind": k, "name": n, "namespaced": True,
                                        "verbs": ["list", "delete", "get"]} for k, n in kinds]}  # fmt: skip
        if method == "GET" and base in ("/api/v1/configmaps", "/apis/apps/v1/deployments", "/api/v1/events"):
            want = query.split("%3D")[-1]
            items = [
                {"metadata": {"name": o["name"], "namespace": p.split("/")[-3]}}
                for p, o in self.objects.items()
                if p.startswith(base.rsplit("/", 1)[0]) and p.split("/")[-2] == base.rsplit("/", 1)[1]
                and o["session"] == want
            ]  # fmt: skip
            return 200, {"items": items}
        if method == "DELETE":
            return (200, {}) if self.objects.pop(base, None) else (404, {})
        return (200, {}) if base in self.objects else (404, {"message": "not found"})


def test_a_reset_finds_a_sessions_objects_by_label_and_leaves_others() -> None:
    cluster = FakeCluster()
    api = Api(ENDPOINT, MockTransport(cluster))
    record = tracking.Record("s1")  # a new kernel: nothing in memory, only the labels
    deleted = record.reset(api, "default", timeout=5)
    assert sorted(deleted) == ["configmap/old", "deployment.apps/web"]
    assert list(cluster.objects) == ["/api/v1/namespaces/team-a/configmaps/other"]  # another session's
    listed = [p for m, p, _, _ in api.transport.requests if m == "GET"]  # type: ignore[attr-defined]
    assert not any(p.startswith("/api/v1/events") for p in listed)  # derived kinds are not searched
    assert record.reset(api, "default", timeout=5) == []
