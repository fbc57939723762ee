"""Requests a real kube-apiserver refuses, and that once were accepted or answered with a 500 here:
out-of-range integers, YAML alias bombs, values no object can hold, bad options and headers.
Each is refused with the Status upstream gives, names the field, and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cluster.support import assert_response, config_map, deployment
from tests.conftest import Cluster

DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"


def _names(c: Cluster, path: str) -> list[str]:
    status, body, _ = c.request("GET", path)
    assert status == 200, body
    return [o["metadata"]["name"] for o in body["items"]]


# -- integers out of their field's range -----------------------------------------------------


@pytest.mark.parametrize("dry_run", ["", "?dryRun=All"], ids=["create", "dry-run"])
@pytest.mark.parametrize("replicas", ["1e20", "100000000000000000000", "2147483648", "-2147483649"])
def test_replicas_beyond_int32_are_refused_naming_the_field(
    cluster: Cluster, namespace: str, replicas: str, dry_run: str
) -> None:
    body = json.dumps(deployment("big")).replace('"replicas": 2', f'"replicas": {replicas}')
    path = DEPLOYMENTS.format(ns=namespace)
    status, answer, _ = cluster.request("POST", path + dry_run, raw=body.encode())
    assert_response(status, answer, 400, "BadRequest", "Go struct field DeploymentSpec.spec.replicas")
    assert "of type int32" in answer["message"]
    assert _names(cluster, path) == []


def test_the_largest_int32_replicas_is_accepted_in_a_dry_run(cluster: Cluster, namespace: str) -> None:
    path = DEPLOYMENTS.format(ns=namespace)
    status, answer, _ = cluster.request("POST", path + "?dryRun=All", deployment("big", replicas=2**31 - 1))
    assert status == 201, answer
    assert answer["spec"]["replicas"] == 2**31 - 1
    assert _names(cluster, path) == []


def test_an_int64_field_takes_values_beyond_int32(cluster: Cluster, namespace: str) -> None:
    dep = deployment("wide")
    dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 2**40
    path = DEPLOYMENTS.format(ns=namespace)
    status, answer, _ = cluster.request("POST", path + "?dryRun=All", dep)
    assert status == 201, answer
    dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 2**63
    status, answer, _ = cluster.request("POST", path + "?dryRun=All", dep)
    assert_response(status, answer, 400, "BadRequest", "terminationGracePeriodSeconds of type int64")


def test_scaling_beyond_int32_is_refused(cluster: Cluster, namespace: str) -> None:
    path = DEPLOYMENTS.format(ns=namespace)
    assert cluster.request("POST", path, deployment("s", replicas=0))[0] == 201
    status, answer, _ = cluster.request(
        "PATCH", f"{path}/s/scale", {"spec": {"replicas": 2**31}}, content_type="application/merge-patch+json"
    )
    assert_response(status, answer, 400, "BadRequest", "ScaleSpec.spec.replicas of type int32")
    assert cluster.request("GET", f"{path}/s")[1]["spec"]["replicas"] == 0


def test_kubectl_server_dry_run_of_replicas_1e20_is_refused(
    kubectl, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "big.yaml"
    text = json.dumps(deployment("big")).replace('"replicas": 2', '"replicas": 1e20')
    manifest.write_text(text)
    for extra in (["--dry-run=server"], []):
        result = kubectl("apply", "-n", namespace, "-f", str(manifest), *extra, check=False)
        assert result.returncode == 1, result.stdout
        assert "spec.replicas" in result.stderr and "int32" in result.stderr, result.stderr
    assert _names(cluster, DEPLOYMENTS.format(ns=namespace)) == []


# -- values no object can hold: 400 naming the field, never 500 ------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type", "field"),
    [
        (b'{"metadata":{"name":"s"},"data":{"a":"\\ud800"}}', "application/json", "data.a"),
        (b'{"metadata":{"name":"s"},"data":{"\\udfff":"a"}}', "application/json", "in data"),
        (b'{"metadata":{"name":"s"},"data":{"a":' + b"1" * 5000 + b"}}", "application/json", "data.a"),
        (b'{"metadata":{"name":"s"},"data":{"a":1e400}}', "application/json", "data.a"),
        (b"metadata: {name: s}\ndata: {1: a}\n", "application/yaml", "in data"),
        (b"metadata: {name: s}\ndata: {a: " + b"7" * 5000 + b"}\n", "application/yaml", "data.a"),
        (b"metadata: {name: s}\ndata: {a: !!binary aGVsbG8=}\n", "application/yaml", "data.a"),
        (b"metadata: {name: s}\ndata: {a: !!set {x, y}}\n", "application/yaml", "data.a"),
        (b"metadata: {name: s, labels: {true: x}}\n", "application/yaml", "in metadata.labels"),
    ],
    ids=[
        "lone-surrogate",
        "surrogate-key",
        "5000-digits",
        "float-overflow",
        "yaml-int-key",
        "yaml-5000-digits",
        "yaml-binary",
        "yaml-set",
        "yaml-bool-key",
    ],
)
def test_values_no_object_can_hold_are_a_400_naming_the_field(
    cluster: Cluster, namespace: str, raw: bytes, content_type: str, field: str
) -> None:
    path = CONFIGMAPS.format(ns=namespace)
    status, answer, _ = cluster.request("POST", path, raw=raw, content_type=content_type)
    assert_response(status, answer, 400, "BadRequest", field)
    assert _names(cluster, path) == []


def test_a_yaml_date_stays_a_string(cluster: Cluster, namespace: str) -> None:
    path = CONFIGMAPS.format(ns=namespace)
    raw = b"metadata: {name: dated}\ndata: {day: 2024-01-31}\n"
    status, answer, _ = cluster.request("POST", path, raw=raw, content_type="application/yaml")
    assert status == 201, answer
    assert answer["data"] == {"day": "2024-01-31"}


def _bomb(levels: int) -> bytes:
    lines = ["metadata: {name: bomb}", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return ("\n".join(lines) + "\n").encode()


def test_a_yaml_alias_bomb_is_refused_before_it_expands(cluster: Cluster, namespace: str) -> None:
    path = CONFIGMAPS.format(ns=namespace)
    raw = _bomb(9)  # about 400 bytes that expand to 10**9 values
    assert len(raw) < 1024
    status, answer, _ = cluster.request("POST", path, raw=raw, content_type="application/yaml", timeout=5)
    assert_response(status, answer, 400, "BadRequest", "excessive aliasing")
    assert _names(cluster, path) == []


def test_modest_yaml_aliases_are_fine(cluster: Cluster, namespace: str) -> None:
    raw = b"metadata: {name: aliased, labels: &l {app: web}, annotations: *l}\ndata: {a: b}\n"
    path = CONFIGMAPS.format(ns=namespace)
    status, answer, _ = cluster.request("POST", path, raw=raw, content_type="application/yaml")
    assert status == 201, answer
    assert answer["metadata"]["annotations"] == {"app": "web"}


def test_a_json_body_with_too_many_values_is_refused(cluster: Cluster, namespace: str) -> None:
    raw = json.dumps({**config_map("many"), "extra": [0] * 400_000}).encode()
    status, answer, _ = cluster.request("POST", CONFIGMAPS.format(ns=namespace), raw=raw)
    assert_response(status, answer, 400, "BadRequest", "more than 300000 values")


# -- options and headers kube-apiserver refuses ----------------------------------------------


@pytest.fixture
def kept(cluster: Cluster, namespace: str) -> str:
    """A ConfigMap that every refused request below must leave alone; its URL."""
    path = CONFIGMAPS.format(ns=namespace)
    assert cluster.request("POST", path, config_map("kept", a="1"))[0] == 201
    return f"{path}/kept"


def test_delete_with_an_unknown_propagation_policy_is_refused(cluster: Cluster, kept: str) -> None:
    status, answer, _ = cluster.request("DELETE", kept + "?propagationPolicy=Bogus")
    assert_response(status, answer, 422, "Invalid", 'propagationPolicy: Unsupported value: "Bogus"')
    status, answer, _ = cluster.request("DELETE", kept, {"propagationPolicy": "Sideways"})
    assert_response(status, answer, 422, "Invalid", "propagationPolicy")
    assert cluster.request("GET", kept)[0] == 200


@pytest.mark.parametrize(
    ("query", "code", "text"),
    [
        ("", 422, "fieldManager: Required value: is required for apply patch"),
        ("?fieldManager=me&force=maybe", 400, 'parsing "maybe"'),
        ("?fieldManager=" + "m" * 300, 422, "fieldManager: Too long: may not be more than 128 bytes"),
    ],
    ids=["no-field-manager", "force-maybe", "long-field-manager"],
)
def test_bad_apply_options_are_refused(cluster: Cluster, kept: str, query: str, code: int, text: str) -> None:
    status, answer, _ = cluster.request(
        "PATCH", kept + query, {"data": {"a": "2"}}, content_type="application/apply-patch+yaml"
    )
    assert_response(status, answer, code, {400: "BadRequest", 422: "Invalid"}[code], text)
    assert cluster.request("GET", kept)[1]["data"] == {"a": "1"}


def test_force_on_a_merge_patch_is_refused(cluster: Cluster, kept: str) -> None:
    status, answer, _ = cluster.request(
        "PATCH", kept + "?force=true", {"data": {"a": "2"}}, content_type="application/merge-patch+json"
    )
    assert_response(
        status, answer, 422, "Invalid", "force: Forbidden: may not be specified for non-apply patch"
    )
    assert cluster.request("GET", kept)[1]["data"] == {"a": "1"}


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("limit=abc", 'parsing "abc"'),
        ("continue=abc", "invalid continue token"),
        ("continue=e30%3D", "invalid continue token"),
        ("resourceVersion=abc", "invalid resource version"),
        ("fieldSelector=spec.foo%3Dbar", "field label not supported: spec.foo"),
        ("watch=true&timeoutSeconds=inf", 'parsing "inf"'),
        ("watch=true&timeoutSeconds=nan", 'parsing "nan"'),
        ("watch=true&timeoutSeconds=1e308", 'parsing "1e308"'),
    ],
)
def test_bad_list_and_watch_options_are_a_400(
    cluster: Cluster, namespace: str, query: str, text: str
) -> None:
    status, answer, _ = cluster.request("GET", CONFIGMAPS.format(ns=namespace) + "?" + query, timeout=5)
    assert_response(status, answer, 400, "BadRequest", text)


def test_supported_field_labels_still_select(cluster: Cluster, namespace: str) -> None:
    status, answer, _ = cluster.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods?fieldSelector=spec.nodeName%3Dx"
    )
    assert status == 200 and answer["items"] == [], answer


def test_owner_references_without_their_required_fields_are_refused(cluster: Cluster, namespace: str) -> None:
    cm = config_map("owned")
    cm["metadata"]["ownerReferences"] = [{"x": 1}]
    path = CONFIGMAPS.format(ns=namespace)
    status, answer, _ = cluster.request("POST", path, cm)
    assert_response(status, answer, 422, "Invalid", "metadata.ownerReferences.uid")
    fields = {c["field"] for c in answer["details"]["causes"]}
    assert fields == {f"metadata.ownerReferences.{k}" for k in ("apiVersion", "kind", "name", "uid")}
    assert _names(cluster, path) == []


def test_an_accept_header_the_server_cannot_write_is_a_406(cluster: Cluster, namespace: str) -> None:
    path = CONFIGMAPS.format(ns=namespace)
    status, answer, _ = cluster.request("GET", path, headers={"Accept": "application/xml"})
    assert_response(status, answer, 406, "NotAcceptable", "application/json")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert cluster.request("GET", path, headers={"Accept": browser})[0] == 200


# -- Services that would reach the host --------------------------------------------------------


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.5", "169.254.169.254"])
def test_endpoints_outside_the_pod_range_are_refused(cluster: Cluster, namespace: str, ip: str) -> None:
    """A selector-less Service pointed at the host (or off loopback) is refused, as upstream
    refuses loopback endpoints: the embedded cluster's Services reach only its pods."""
    services = f"/api/v1/namespaces/{namespace}/services"
    svc = {"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}}
    assert cluster.request("POST", services, svc)[0] == 201
    endpoints = f"/api/v1/namespaces/{namespace}/endpoints"
    manual = {"metadata": {"name": "db"}, "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 5432}]}]}
    status, answer, _ = cluster.request("POST", endpoints, manual)
    assert_response(status, answer, 422, "Invalid", "subsets[0].addresses[0].ip")
    assert "must be a pod IP of this cluster" in answer["message"], answer
    assert _names(cluster, endpoints) == []
    slices = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
    piece = {
        "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip]}],
        "ports": [{"port": 5432}],
    }
    status, answer, _ = cluster.request("POST", slices, piece)
    assert_response(status, answer, 422, "Invalid", "endpoints[0].addresses[0]")
    # an address in the cluster's pod range is a pod's, and is taken
    node = cluster.request("GET", "/api/v1/nodes")[1]["items"][1]
    inside = node["spec"]["podCIDR"].rsplit(".", 1)[0] + ".250"
    manual["subsets"][0]["addresses"][0]["ip"] = inside
    assert cluster.request("POST", endpoints, manual)[0] == 201
