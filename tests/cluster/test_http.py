"""The API server over raw HTTPS: security, concurrency, watches, Table output, discovery and OpenAPI."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.cluster.support import assert_response, config_map, watch_events
from tests.conftest import Cluster

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBECTL_DISCOVERY_ACCEPT = (
    f"{AGGREGATED},application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"


def _create(cluster: Cluster, namespace: str, name: str, **data: str) -> dict:
    status, body, _ = cluster.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", config_map(name, **data)
    )
    assert status == 201, body
    return body


# -- security ------------------------------------------------------------------------------


def _listeners(port: int) -> dict[str, list[str]]:
    """Local addresses (hex, as the kernel shows them) listening on ``port``, per /proc/net table."""
    found: dict[str, list[str]] = {}
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.setdefault(table, []).append(address)
    return found


def test_the_server_listens_on_loopback_only(cluster: Cluster) -> None:
    url = urlsplit(cluster.server)
    assert url.scheme == "https" and url.hostname == "127.0.0.1"
    listeners = _listeners(url.port or 443)
    assert listeners == {"tcp": ["0100007F"]}, f"expected one listener on 127.0.0.1 only, found {listeners}"


def test_plain_http_is_not_served(cluster: Cluster) -> None:
    url = urlsplit(cluster.server)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096)
    assert b'"gitVersion"' not in answer


def test_the_certificate_is_signed_by_the_cluster_ca(cluster: Cluster) -> None:
    url = urlsplit(cluster.server)
    stranger = ssl.create_default_context()  # the system's CAs only
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection((url.hostname, url.port), timeout=5) as sock,
        stranger.wrap_socket(sock, server_hostname="127.0.0.1"),
    ):
        pass


@pytest.mark.parametrize("token", [None, "wrong", ""], ids=["no-token", "wrong-token", "empty-token"])
@pytest.mark.parametrize(
    "path", ["/api/v1/namespaces", "/version", "/apis", "/api/v1/namespaces/default/pods/x"]
)
def test_requests_without_the_token_get_401_with_a_status(
    cluster: Cluster, token: str | None, path: str
) -> None:
    status, body, headers = cluster.request("GET", path, token=token)
    assert status == 401
    assert headers["Content-Type"].startswith("application/json")
    assert_response(status, body, 401, "Unauthorized", "Unauthorized")


def test_writes_without_the_token_change_nothing(cluster: Cluster, namespace: str) -> None:
    status, body, _ = cluster.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", config_map("sneaky"), token="wrong"
    )
    assert_response(status, body, 401, "Unauthorized")
    assert cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/sneaky")[0] == 404


def test_kubectl_with_a_wrong_token_is_told_to_log_in(kubectl, namespace: str) -> None:
    result = kubectl("--token=wrong", "get", "pods", "-n", namespace, check=False)
    assert result.returncode == 1
    # "(Unauthorized)", or with discovery not cached yet "(the server has asked for the client to provide
    # credentials)": both are how kubectl words a 401, as against kube-apiserver
    assert "error: You must be logged in to the server (" in result.stderr


# -- optimistic concurrency -----------------------------------------------------------------


def test_put_with_a_stale_resource_version_is_a_409_conflict(cluster: Cluster, namespace: str) -> None:
    url = f"/api/v1/namespaces/{namespace}/configmaps/cc"
    created = _create(cluster, namespace, "cc", v="1")
    stale = created["metadata"]["resourceVersion"]

    first = {**created, "data": {"v": "2"}}
    status, updated, _ = cluster.request("PUT", url, first)
    assert status == 200, updated
    assert int(updated["metadata"]["resourceVersion"]) > int(stale)

    second = {**created, "data": {"v": "3"}}  # still carries the stale resourceVersion
    status, body, _ = cluster.request("PUT", url, second)
    assert status == 409
    assert_response(status, body, 409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "cc": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": "cc", "kind": "configmaps"}
    assert cluster.request("GET", url)[1]["data"] == {"v": "2"}  # the first writer's change stands


def test_patch_with_a_stale_resource_version_is_a_409_conflict(cluster: Cluster, namespace: str) -> None:
    created = _create(cluster, namespace, "pc", v="1")
    url = f"/api/v1/namespaces/{namespace}/configmaps/pc"
    cluster.request("PATCH", url, {"data": {"v": "2"}}, content_type="application/merge-patch+json")
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"v": "3"}}
    status, body, _ = cluster.request("PATCH", url, stale, content_type="application/merge-patch+json")
    assert_response(status, body, 409, "Conflict", 'Operation cannot be fulfilled on configmaps "pc"')
    assert cluster.request("GET", url)[1]["data"] == {"v": "2"}


# -- watches --------------------------------------------------------------------------------


def test_a_watch_resumed_from_a_resource_version_gets_exactly_the_later_events(
    cluster: Cluster, namespace: str
) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    a = _create(cluster, namespace, "a", v="1")
    since = a["metadata"]["resourceVersion"]
    b = _create(cluster, namespace, "b")
    status, a2, _ = cluster.request(
        "PATCH", f"{base}/a", {"data": {"v": "2"}}, content_type="application/merge-patch+json"
    )
    assert status == 200, a2
    status, gone, _ = cluster.request("DELETE", f"{base}/b")
    assert status == 200, gone
    _create(cluster, "default", f"elsewhere-{namespace}")  # another namespace: not in this watch

    events = watch_events(cluster, f"{base}?watch=true&resourceVersion={since}&timeoutSeconds=1")
    seen = [
        (e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]["resourceVersion"])
        for e in events
    ]
    assert seen[:2] == [
        ("ADDED", "b", b["metadata"]["resourceVersion"]),
        ("MODIFIED", "a", a2["metadata"]["resourceVersion"]),
    ]
    assert [s[:2] for s in seen] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert int(seen[2][2]) > int(a2["metadata"]["resourceVersion"])
    assert events[1]["object"]["data"] == {"v": "2"}
    cluster.request("DELETE", f"/api/v1/namespaces/default/configmaps/elsewhere-{namespace}")


def test_a_watch_without_resource_version_starts_with_every_object(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace, "one")
    _create(cluster, namespace, "two")
    events = watch_events(cluster, f"/api/v1/namespaces/{namespace}/configmaps?watch=1&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "one"),
        ("ADDED", "two"),
    ]


def test_watch_list_sends_every_object_then_the_initial_events_end_bookmark(
    cluster: Cluster, namespace: str
) -> None:
    made = [_create(cluster, namespace, n) for n in ("x1", "x2", "x3")]
    events = watch_events(
        cluster,
        f"/api/v1/namespaces/{namespace}/configmaps?watch=true&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
    )
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "x1"),
        ("ADDED", "x2"),
        ("ADDED", "x3"),
        ("BOOKMARK", None),
    ]
    bookmark = events[-1]["object"]
    assert bookmark["kind"] == "ConfigMap" and bookmark["apiVersion"] == "v1"
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(bookmark["metadata"]["resourceVersion"]) >= max(
        int(m["metadata"]["resourceVersion"]) for m in made
    )


def test_watch_list_without_resource_version_match_is_refused(cluster: Cluster, namespace: str) -> None:
    status, body, _ = cluster.request(
        "GET", f"/api/v1/namespaces/{namespace}/configmaps?watch=true&sendInitialEvents=true&timeoutSeconds=1"
    )
    assert_response(status, body, 422, "Invalid", "resourceVersionMatch")


def test_a_watch_ends_after_timeout_seconds(cluster: Cluster, namespace: str) -> None:
    start = time.monotonic()
    assert (
        watch_events(cluster, f"/api/v1/namespaces/{namespace}/configmaps?watch=true&timeoutSeconds=1") == []
    )
    assert 0.8 < time.monotonic() - start < 5


# -- Table output ---------------------------------------------------------------------------


def test_a_list_as_table_has_columns_rows_and_metadata(cluster: Cluster) -> None:
    status, table, _headers = cluster.request("GET", "/api/v1/nodes", headers={"Accept": TABLE_ACCEPT})
    assert status == 200, table
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert int(table["metadata"]["resourceVersion"]) > 0
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Status", "Roles", "Age", "Version"]
    assert [c["priority"] for c in table["columnDefinitions"][:5]] == [0, 0, 0, 0, 0]
    assert all(c["priority"] == 1 for c in table["columnDefinitions"][5:])  # -o wide only
    rows = {r["cells"][0]: r for r in table["rows"]}
    assert sorted(rows) == ["test-control-plane", "test-worker", "test-worker2"]
    assert rows["test-control-plane"]["cells"][1:3] == ["Ready", "control-plane"]
    assert rows["test-worker"]["cells"][1:3] == ["Ready", "<none>"]
    meta = rows["test-worker"]["object"]
    assert meta["kind"] == "PartialObjectMetadata" and meta["apiVersion"] == "meta.k8s.io/v1"
    assert meta["metadata"]["name"] == "test-worker" and meta["metadata"]["uid"]


def test_a_list_without_table_accept_is_a_plain_list(cluster: Cluster, namespace: str) -> None:
    _create(cluster, namespace, "plain", k="v")
    status, body, _ = cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")
    assert status == 200, body
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in body["items"]] == ["plain"]
    assert body["metadata"]["resourceVersion"]


# -- discovery, OpenAPI, version -------------------------------------------------------------


def test_aggregated_discovery_answers_kubectl_with_the_exact_media_type(cluster: Cluster) -> None:
    status, body, headers = cluster.request("GET", "/apis", headers={"Accept": KUBECTL_DISCOVERY_ACCEPT})
    assert status == 200
    assert headers["Content-Type"] == AGGREGATED
    assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
    groups = {item["metadata"]["name"]: item for item in body["items"]}
    assert {"apps", "coordination.k8s.io", "discovery.k8s.io"} <= set(groups)
    deploy = next(r for r in groups["apps"]["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
    assert deploy["scope"] == "Namespaced"
    assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}

    status, core, headers = cluster.request("GET", "/api", headers={"Accept": KUBECTL_DISCOVERY_ACCEPT})
    assert headers["Content-Type"] == AGGREGATED
    assert core["items"][0]["metadata"] == {}
    resources = {r["resource"]: r for r in core["items"][0]["versions"][0]["resources"]}
    assert resources["pods"]["shortNames"] == ["po"]
    assert resources["nodes"]["scope"] == "Cluster"
    assert "events" in resources


def test_legacy_discovery_for_clients_that_only_accept_json(cluster: Cluster) -> None:
    status, api, headers = cluster.request("GET", "/api", headers={"Accept": "application/json"})
    assert status == 200, api
    assert (
        headers["Content-Type"].startswith("application/json")
        and "apidiscovery" not in headers["Content-Type"]
    )
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    _, apis, _ = cluster.request("GET", "/apis", headers={"Accept": "application/json"})
    assert apis["kind"] == "APIGroupList"
    apps = next(g for g in apis["groups"] if g["name"] == "apps")
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    _, resources, _ = cluster.request("GET", "/apis/apps/v1")
    assert resources["kind"] == "APIResourceList" and resources["groupVersion"] == "apps/v1"
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["deployments"]["shortNames"] == ["deploy"] and by_name["deployments"]["namespaced"] is True
    assert by_name["deployments/scale"]["kind"] == "Scale"
    assert by_name["deployments/scale"]["group"] == "autoscaling"
    _, v1, _ = cluster.request("GET", "/api/v1")
    assert {"pods", "pods/log", "services", "namespaces", "events"} <= {r["name"] for r in v1["resources"]}


def test_unknown_api_paths_are_404_status(cluster: Cluster) -> None:
    for path in ("/apis/nope.example.com/v1", "/apis/apps/v1/namespaces/default/gizmos", "/nothing/here"):
        status, body, _ = cluster.request("GET", path)
        assert_response(status, body, 404, "NotFound", "the server could not find the requested resource")


def test_openapi_v3_lets_kubectl_leave_validation_to_the_server(cluster: Cluster) -> None:
    status, root, _ = cluster.request("GET", "/openapi/v3")
    assert status == 200
    assert {"api/v1", "apis/apps/v1"} <= set(root["paths"])
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    status, doc, _ = cluster.request("GET", url)
    assert status == 200 and doc["openapi"].startswith("3.")
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert cluster.request("GET", "/openapi/v2")[0] == 404


def test_version(cluster: Cluster) -> None:
    status, version, _ = cluster.request("GET", "/version")
    assert status == 200
    assert version["major"] == "1" and version["minor"] == "32"
    assert version["gitVersion"].startswith("v1.32.")
    assert version["platform"].startswith("linux/")
