"""Bad input on purpose, over raw HTTP and through kubectl: each gets the Status a real kube-apiserver
gives, and the daemon survives with every earlier object intact.

Inputs that would poison the store if they got in (wrongly typed fields, deep nesting) and the fuzz run
on a scratch cluster of their own, so a regression cannot take the session cluster down with it.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.support import assert_response, config_map, deployment
from tests.conftest import Cluster, labkit, start_cluster

MIB = 1024 * 1024
SECRET = {"metadata": {"name": "keep"}, "type": "Opaque", "data": {"token": "c2VjcmV0"}}
UNKNOWN_FORMAT = "the body of the request was in an unknown format - accepted media types include: "


@pytest.fixture(scope="module")
def control(cluster: Cluster) -> Iterator[list[dict[str, Any]]]:
    """Objects created before any bad input, in a namespace no test here writes to. They are of
    kinds no controller changes, so any difference afterwards is damage."""
    ns = f"control-{uuid.uuid4().hex[:6]}"
    assert cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    made = []
    for path, body in (
        (f"/api/v1/namespaces/{ns}/configmaps", config_map("keep", a="1")),
        (f"/api/v1/namespaces/{ns}/secrets", SECRET),
    ):
        status, obj, _ = cluster.request("POST", path, body)
        assert status == 201, obj
        made.append(obj)
    yield made
    cluster.request("DELETE", f"/api/v1/namespaces/{ns}")


def _self_path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    group = "api/v1" if obj["apiVersion"] == "v1" else f"apis/{obj['apiVersion']}"
    plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[obj["kind"]]
    return f"/{group}/namespaces/{meta['namespace']}/{plural}/{meta['name']}"


def assert_intact(c: Cluster, objects: list[dict[str, Any]]) -> None:
    """The server answers, and every object is exactly as it was created."""
    status, version, _ = c.request("GET", "/version")
    assert status == 200 and version["major"] == "1", "the API server no longer answers"
    for obj in objects:
        status, now, _ = c.request("GET", _self_path(obj))
        assert status == 200, now
        assert now == obj, f"{_self_path(obj)} changed"


@pytest.fixture(autouse=True)
def _server_survives(cluster: Cluster, control: list[dict[str, Any]]) -> Iterator[None]:
    yield
    assert_intact(cluster, control)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster of its own for inputs that may poison the store."""
    home = tmp_path_factory.mktemp("labkit-scratch")
    c = start_cluster(home, "scratch", nodes=1)
    yield c
    labkit("cluster", "down", "--name", "scratch", "--delete", home=home, check=False)


def _post(c: Cluster, path: str, raw: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    status, body, _ = c.request("POST", path, raw=raw, content_type=content_type)
    return status, body


# -- malformed bodies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"metadata": {"name": "x"',
        b'{"metadata": {"name": "x"}}}',
        b"{'metadata': {}}",
        b'{"metadata": {"name": "x",}}',
        b"\xff\xfe\x00{",
        b"   ",
        b"",
    ],
    ids=["truncated", "extra-brace", "single-quotes", "trailing-comma", "not-utf8", "blank", "empty"],
)
def test_malformed_json_is_a_400(cluster: Cluster, namespace: str, raw: bytes) -> None:
    status, body = _post(cluster, f"/api/v1/namespaces/{namespace}/configmaps", raw)
    assert_response(status, body, 400, "BadRequest")
    assert cluster.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")[1]["items"] == []


def test_malformed_json_names_where_it_broke(cluster: Cluster, namespace: str) -> None:
    status, body = _post(cluster, f"/api/v1/namespaces/{namespace}/configmaps", b'{"metadata": {"name": "x"')
    assert_response(status, body, 400, "BadRequest", "line 1 column 26")


@pytest.mark.parametrize("raw", [b"null", b"[]", b'"configmap"', b"42"])
def test_a_json_body_that_is_not_an_object_is_a_400(cluster: Cluster, namespace: str, raw: bytes) -> None:
    status, body = _post(cluster, f"/api/v1/namespaces/{namespace}/configmaps", raw)
    assert_response(status, body, 400, "BadRequest")


def test_kubectl_create_raw_with_malformed_json(kubectl, namespace: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"')
    result = kubectl(
        "create", "--raw", f"/api/v1/namespaces/{namespace}/configmaps", "-f", str(broken), check=False
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error from server (BadRequest): "), result.stderr
    assert "JSON" in result.stderr


def test_malformed_yaml_is_a_400_naming_the_line(cluster: Cluster, namespace: str) -> None:
    raw = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: [\n"
    status, body = _post(cluster, f"/api/v1/namespaces/{namespace}/configmaps", raw, "application/yaml")
    assert_response(status, body, 400, "BadRequest", "line 5")


def test_kubectl_apply_of_malformed_yaml_is_a_clear_client_side_error(
    kubectl, namespace: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: [\n")
    result = kubectl("apply", "-n", namespace, "-f", str(broken), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: error parsing {broken}: error converting YAML to JSON: yaml: line 5:"
    )


# -- wrong type for the URL -----------------------------------------------------------------


def test_an_api_version_that_does_not_match_the_url_is_a_400(cluster: Cluster, namespace: str) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]},
    }
    status, body, _ = cluster.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", service)
    assert_response(status, body, 400, "BadRequest")
    assert (
        body["message"]
        == "the API version in the data (v1) does not match the expected API version (apps/v1)"
    )


def test_a_kind_that_does_not_match_the_url_is_a_400(cluster: Cluster, namespace: str) -> None:
    rs = {**deployment("rs"), "kind": "ReplicaSet"}
    status, body, _ = cluster.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", rs)
    assert_response(status, body, 400, "BadRequest")
    assert "ReplicaSet" in body["message"] and "Deployment" in body["message"]
    assert cluster.request("GET", f"/apis/apps/v1/namespaces/{namespace}/replicasets/rs")[0] == 404


def test_kubectl_create_raw_of_a_service_into_deployments(kubectl, namespace: str, tmp_path: Path) -> None:
    svc = tmp_path / "svc.json"
    svc.write_text(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}))
    result = kubectl(
        "create", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments", "-f", str(svc), check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error from server (BadRequest): the API version in the data (v1) does not "
        "match the expected API version (apps/v1)"
    )


def test_a_name_that_does_not_match_the_url_is_a_400(cluster: Cluster, namespace: str) -> None:
    url = f"/api/v1/namespaces/{namespace}/configmaps"
    made = cluster.request("POST", url, config_map("here"))[1]
    moved = {**made, "metadata": {**made["metadata"], "name": "there"}}
    status, body, _ = cluster.request("PUT", f"{url}/here", moved)
    assert_response(status, body, 400, "BadRequest")
    assert body["message"] == "the name of the object (there) does not match the name on the URL (here)"


def test_a_namespace_that_does_not_match_the_url_is_a_400(cluster: Cluster, namespace: str) -> None:
    body = config_map("x")
    body["metadata"]["namespace"] = "default"
    status, answer, _ = cluster.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert_response(status, answer, 400, "BadRequest")
    assert (
        answer["message"]
        == "the namespace of the provided object does not match the namespace sent on the request"
    )


# -- validation -------------------------------------------------------------------------------


def test_a_missing_required_field_is_a_422_with_causes(cluster: Cluster, namespace: str) -> None:
    body = deployment("nosel")
    del body["spec"]["selector"]
    status, answer, _ = cluster.request("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body)
    assert_response(status, answer, 422, "Invalid")
    assert answer["message"].startswith(
        'Deployment.apps "nosel" is invalid: [spec.selector: Required value, '
    )
    details = answer["details"]
    assert (details["name"], details["group"], details["kind"]) == ("nosel", "apps", "Deployment")
    assert {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"} in details[
        "causes"
    ]


def test_kubectl_apply_lists_the_invalid_fields(kubectl, namespace: str, tmp_path: Path) -> None:
    body = deployment("nosel")
    del body["spec"]["selector"]
    manifest = tmp_path / "nosel.yaml"
    manifest.write_text(yaml.safe_dump(body))
    result = kubectl("apply", "-n", namespace, "-f", str(manifest), check=False)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].strip() == 'The Deployment "nosel" is invalid:'
    assert "* spec.selector: Required value" in lines


def test_an_invalid_name_is_a_422(cluster: Cluster, namespace: str) -> None:
    status, body, _ = cluster.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", config_map("Bad_Name")
    )
    assert_response(status, body, 422, "Invalid")
    why = (
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    assert (
        body["message"] == f'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {why}'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "metadata.name",
            "message": f'Invalid value: "Bad_Name": {why}',
        }
    ]


def test_kubectl_create_with_an_invalid_name(kubectl, namespace: str) -> None:
    result = kubectl("create", "configmap", "Bad_Name", "-n", namespace, check=False)
    assert result.returncode == 1
    assert (
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 '
        "subdomain must consist of lower case alphanumeric characters" in result.stderr
    )
    result = kubectl("create", "namespace", "Bad_Name", check=False)
    assert result.returncode == 1
    assert (
        'Namespace "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 '
        "label must consist of lower case alphanumeric characters or '-'" in result.stderr
    )


def test_an_unknown_field_with_strict_validation_is_a_400(cluster: Cluster, namespace: str) -> None:
    body = deployment("typo")
    body["spec"]["replica"] = body["spec"].pop("replicas")
    url = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    status, answer, _ = cluster.request("POST", f"{url}?fieldValidation=Strict", body)
    assert_response(status, answer, 400, "BadRequest")
    assert answer["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
        'error: unknown field "spec.replica"'
    )
    assert cluster.request("GET", f"{url}/typo")[0] == 404

    status, made, headers = cluster.request("POST", f"{url}?fieldValidation=Warn", body)
    assert status == 201, made
    assert headers["Warning"] == '299 - "unknown field \\"spec.replica\\""'


@pytest.mark.parametrize("mode", ["Warn", "Ignore"])
def test_an_unknown_field_that_is_not_refused_is_dropped(cluster: Cluster, namespace: str, mode: str) -> None:
    body = deployment("typo")
    body["spec"]["replica"] = body["spec"].pop("replicas")
    url = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    status, made, _ = cluster.request("POST", f"{url}?fieldValidation={mode}", body)
    assert status == 201, made
    assert "replica" not in made["spec"] and made["spec"]["replicas"] == 1  # dropped, then defaulted


def test_kubectl_apply_with_an_unknown_field(kubectl, namespace: str, tmp_path: Path) -> None:
    body = deployment("typo")
    body["spec"]["replica"] = body["spec"].pop("replicas")
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(yaml.safe_dump(body))
    result = kubectl("apply", "-n", namespace, "-f", str(manifest), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'Error from server (BadRequest): error when creating "{manifest}": Deployment '
        'in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replica"'
    )
    warned = kubectl("apply", "--validate=warn", "-n", namespace, "-f", str(manifest))
    assert 'Warning: unknown field "spec.replica"' in warned.stderr
    assert warned.stdout.strip() == "deployment.apps/typo created"


# -- size and media type --------------------------------------------------------------------


def test_a_body_over_3_mib_is_a_413(cluster: Cluster, namespace: str) -> None:
    big = json.dumps(config_map("big", k="x" * (3 * MIB))).encode()
    status, body = _post(cluster, f"/api/v1/namespaces/{namespace}/configmaps", big)
    assert_response(status, body, 413, "RequestEntityTooLarge")
    assert body["message"] == "Request entity too large: limit is 3145728"


@pytest.mark.parametrize("size", [900_000, 2_500_000], ids=["900KB-configmap", "2.5MB-patch"])
def test_a_large_body_under_the_limit_is_read_whole(cluster: Cluster, namespace: str, size: int) -> None:
    url = f"/api/v1/namespaces/{namespace}/configmaps"
    if size < MIB:  # a ConfigMap may hold up to 1 MiB of data
        status, body, _ = cluster.request("POST", url, config_map("large", k="y" * size))
        assert status == 201, body
        assert len(cluster.request("GET", f"{url}/large")[1]["data"]["k"]) == size
    else:  # over 1 MiB the ConfigMap is invalid (422), but the body must still be read whole to say so
        cluster.request("POST", url, config_map("large"))
        status, body, _ = cluster.request(
            "PATCH", f"{url}/large", {"data": {"k": "y" * size}}, content_type="application/merge-patch+json"
        )
        assert status != 400, body


def test_kubectl_apply_of_an_oversized_object(kubectl, namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "big.yaml"
    manifest.write_text(yaml.safe_dump(config_map("big", k="x" * (3 * MIB + 100))))
    result = kubectl("apply", "-n", namespace, "-f", str(manifest), check=False)
    assert (
        f'Error from server (RequestEntityTooLarge): error when creating "{manifest}": Request entity too '
        "large: limit is 3145728"
    ) in result.stderr


def test_an_unknown_content_type_is_a_415(cluster: Cluster, namespace: str) -> None:
    raw = json.dumps(config_map("x")).encode()
    for media in ("text/plain", "application/xml", "image/png"):
        status, body = _post(cluster, f"/api/v1/namespaces/{namespace}/configmaps", raw, media)
        assert_response(status, body, 415, "UnsupportedMediaType")
        assert body["message"].startswith(
            UNKNOWN_FORMAT + "application/json, application/yaml, application/vnd.kubernetes.protobuf"
        )


def test_a_patch_with_a_non_patch_content_type_is_a_415(cluster: Cluster, namespace: str) -> None:
    cluster.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", config_map("p"))
    status, body, _ = cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/p",
        {"data": {"a": "b"}},
        content_type="application/json",
    )
    assert_response(status, body, 415, "UnsupportedMediaType")
    assert "application/merge-patch+json" in body["message"]


def test_a_patch_415_says_what_kube_apiserver_says(cluster: Cluster, namespace: str) -> None:
    cluster.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", config_map("p"))
    status, body, _ = cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/p",
        {"data": {"a": "b"}},
        content_type="application/json",
    )
    assert status == 415
    assert body["message"].startswith(UNKNOWN_FORMAT)


# -- inputs nested too deep (on the scratch cluster) ---------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"metadata":{"name":"deep"},"data":{"k":"v"},"x":' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("media", ["application/json", "application/yaml", "application/merge-patch+json"])
def test_deeply_nested_bodies_are_a_400(scratch: Cluster, media: str) -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    method = "PATCH" if "patch" in media else "POST"
    if method == "PATCH":
        scratch.request("POST", "/api/v1/namespaces/default/configmaps", config_map("target"))
    url = "/api/v1/namespaces/default/configmaps" + ("/target" if method == "PATCH" else "")
    status, body, _ = scratch.request(method, url, raw=raw, content_type=media)
    assert_response(status, body, 400, "BadRequest")


def test_a_body_nested_just_under_the_parser_limit_is_a_400(scratch: Cluster) -> None:
    nested = b"1"
    for _ in range(990):
        nested = b'{"a":' + nested + b"}"
    raw = b'{"metadata":{"name":"deep"},"data":{"k":"v"},"extra":' + nested + b"}"
    status, body, _ = scratch.request("POST", "/api/v1/namespaces/default/configmaps", raw=raw)
    assert status < 500, body


WRONG_TYPES = [
    (
        "replicas-string",
        lambda d: d["spec"].__setitem__("replicas", "three"),
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
    ),
    (
        "replicas-float",
        lambda d: d["spec"].__setitem__("replicas", 1.5),
        "into Go struct field DeploymentSpec.spec.replicas of type int32",
    ),
    (
        "replicas-bool",
        lambda d: d["spec"].__setitem__("replicas", True),
        "json: cannot unmarshal bool into Go struct field DeploymentSpec.spec.replicas of type int32",
    ),
    (
        "name-number",
        lambda d: d["metadata"].__setitem__("name", 7),
        "into Go struct field ObjectMeta.metadata.name of type string",
    ),
    (
        "labels-list",
        lambda d: d["metadata"].__setitem__("labels", ["app"]),
        "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels "
        "of type map[string]string",
    ),
    (
        "metadata-list",
        lambda d: d.__setitem__("metadata", []),
        "json: cannot unmarshal array into Go struct field Deployment.metadata of type ObjectMeta",
    ),
    (
        "containers-object",
        lambda d: d["spec"]["template"]["spec"].__setitem__("containers", {"name": "c"}),
        "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers "
        "of type []Container",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [(w[1], w[2]) for w in WRONG_TYPES], ids=[w[0] for w in WRONG_TYPES]
)
def test_a_wrongly_typed_field_is_a_400(
    scratch: Cluster, change: Callable[[dict], None], message: str
) -> None:
    url = "/apis/apps/v1/namespaces/default/deployments"
    body = deployment("wrong")
    change(body)
    status, answer, _ = scratch.request("POST", url, body)
    assert_response(status, answer, 400, "BadRequest")
    assert answer["message"].startswith(
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
    ), answer["message"]
    assert message in answer["message"]
    status, listed, _ = scratch.request("GET", url)
    assert status == 200, listed
    assert "wrong" not in [d["metadata"]["name"] for d in listed["items"]]


def test_a_config_map_value_that_is_not_a_string_is_a_400(cluster: Cluster, namespace: str) -> None:
    status, body, _ = cluster.request(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "num"}, "data": {"k": 5}}
    )
    assert_response(
        status,
        body,
        400,
        "BadRequest",
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number',
    )
    assert "of type string" in body["message"]


def test_a_bad_name_never_reaches_the_store_where_it_would_break_listing(scratch: Cluster) -> None:
    scratch.request("POST", "/api/v1/namespaces", {"metadata": {"name": "poison"}})
    status, body, _ = scratch.request(
        "POST", "/apis/apps/v1/namespaces/poison/deployments", {**deployment("x"), "metadata": {"name": 7}}
    )
    assert_response(status, body, 400, "BadRequest")
    scratch.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("fine"))
    for path in ("/apis/apps/v1/namespaces/default/deployments", "/apis/apps/v1/deployments"):
        status, listed, _ = scratch.request("GET", path)
        assert status == 200, listed
        assert [d["metadata"]["name"] for d in listed["items"]] == ["fine"]


# -- fuzz -------------------------------------------------------------------------------------

FUZZ_SEED = 20260101
FUZZ_REQUESTS = 600
WRONG_VALUES: list[Any] = [None, 0, -1, 1.5, True, "", "x", [], {}, [1, "a"], {"a": {"b": 1}}, "é" * 300]
OBJECT_TYPES = ["application/json", "application/yaml", "application/json; charset=utf-8"]
PATCH_TYPES = [
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
]
ODD_TYPES = [
    "application/vnd.kubernetes.protobuf",
    "text/plain",
    "",
    "a/b;c=d",
    "multipart/form-data; boundary=x",
]
ACCEPTS = [
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "*/*",
    "text/html",
    "application/vnd.kubernetes.protobuf",
    "application/json;as=Table;v=v9;g=nope",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
]
QUERY = [
    "fieldValidation=Strict",
    "fieldValidation=Warn",
    "fieldValidation=Bogus",
    "dryRun=All",
    "dryRun=Nope",
    "labelSelector=app%3Dfz1",
    "labelSelector=%28%28%28",
    "labelSelector=a+in+%28b",
    "fieldSelector=x%3D%3D%3Dy",
    "fieldSelector=metadata.name%3Dfz1",
    "limit=-5",
    "limit=abc",
    "resourceVersion=abc",
    "resourceVersion=0",
    "propagationPolicy=Sideways",
    "gracePeriodSeconds=xyz",
    "timeoutSeconds=abc",
    "includeObject=Everything",
    "includeObject=Object",
    "fieldManager=" + "m" * 200,
    "force=true",
    "pretty=true",
    "%ZZ=%ZZ",
]
NAMES = ["fz1", "fz1", "fz1", "fz2", "missing", "UPPER", "-"]


def _seeds(name: str) -> dict[str, dict[str, Any]]:
    """A valid object for each fuzzed collection, by its path below the namespace."""
    return {
        "api/v1/namespaces/{ns}/configmaps": config_map(name, a="1"),
        "api/v1/namespaces/{ns}/secrets": {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "data": {"k": "dmFsdWU="},
        },
        "api/v1/namespaces/{ns}/services": {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {
                "selector": {"app": name},
                "ports": [{"port": 80, "targetPort": 8080}],
                "type": "NodePort",
            },
        },
        "api/v1/namespaces/{ns}/pods": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox",
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "1", "memory": "64Mi"}},
                    }
                ]
            },
        },
        "apis/apps/v1/namespaces/{ns}/deployments": deployment(name),
        "apis/apps/v1/namespaces/{ns}/replicasets": {**deployment(name), "kind": "ReplicaSet"},
    }


SUBRESOURCES = {
    "apis/apps/v1/namespaces/{ns}/deployments": ["scale", "status"],
    "apis/apps/v1/namespaces/{ns}/replicasets": ["scale", "status"],
    "api/v1/namespaces/{ns}/pods": ["status", "binding", "eviction", "log"],
    "api/v1/namespaces/{ns}/services": ["status"],
}
# paths stay inside the fuzz namespace (or name nothing), so a random DELETE cannot remove anything else;
# "watch" never appears, since a watch without timeoutSeconds streams until the client leaves
ODD_PATHS = [
    "/api/v1/namespaces/{ns}/{junk}",
    "/apis/{junk}/v1/namespaces/{ns}/deployments",
    "/apis/apps/{junk}",
    "/api/{junk}",
    "/{junk}",
    "/openapi/v3/{junk}",
    "/api/v1/namespaces/{ns}/configmaps/%2e%2e",
    "/api/v1/namespaces/{ns}/configmaps/a%00b",
    "//api//v1//namespaces//{ns}//configmaps",
    "/api/v1/namespaces/{ns}/configmaps/" + "n" * 300,
    "/api/v1/namespaces/{ns}/configmaps/fz1/{junk}",
]


def _leaves(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every value inside ``obj`` (the container paths included)."""
    out = [path]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _leaves(value, (*path, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _leaves(value, (*path, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


def _mutate(rng: random.Random, body: Any) -> bytes:
    """A body with one random defect, or none (one time in eight)."""
    choice = rng.randrange(8)
    inner = [p for p in _leaves(body) if p]
    if choice == 0:  # a known field gets a value of the wrong type
        body = _set(body, rng.choice(inner), rng.choice(WRONG_VALUES))
    elif choice == 1:  # nesting around the 100-level limit: under it stored, over it a 400
        nested: Any = "v"
        for _ in range(rng.randrange(5, 200)):
            nested = {"n": nested} if rng.random() < 0.5 else [nested]
        body = _set(body, rng.choice(inner), nested)
    elif choice == 2:  # a huge string, under the size limit
        body = _set(
            body,
            rng.choice([p for p in inner if isinstance(p[-1], str)]),
            "y" * rng.choice([70_000, 300_000, 1_100_000, 2_500_000]),
        )
    raw = json.dumps(body).encode()
    if choice == 3:  # truncated
        raw = raw[: rng.randrange(len(raw))]
    elif choice == 4:  # bytes changed
        data = bytearray(raw)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        raw = bytes(data)
    elif choice == 5:  # random bytes, or a protobuf envelope with garbage inside
        raw = rng.choice([b"", b"k8s\x00"]) + rng.randbytes(rng.randrange(1, 500))
    elif choice == 6:  # a JSON document that is not an object
        raw = rng.choice([b"null", b"[]", b"1", b'"s"', b"[{}]", b"{}"])
    return raw


def _patch_body(rng: random.Random, seed: dict[str, Any], media: str) -> Any:
    """A patch of the kind the media type names (a list of operations for a JSON patch)."""
    if media == "application/json-patch+json":
        return rng.choice(
            [
                [{"op": "replace", "path": "/metadata/labels", "value": {"a": "b"}}],
                [
                    {"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}},
                    {"op": "remove", "path": "/nope"},
                ],
                [{"op": "test", "path": "/metadata/name", "value": "other"}],
                [{"op": "move", "from": "/spec", "path": "/x"}],
                [{"op": "copy", "from": "/metadata", "path": "/spec"}],
                [{"op": "replace", "path": "/spec/replicas", "value": 2}],
            ]
        )
    return rng.choice(
        [
            {"metadata": {"labels": {"k": "v"}}, "spec": {"replicas": 3}},
            {"metadata": {"labels": {"k": None}, "annotations": {"a": "b"}}},
            {"data": {"a": "2"}},
            {"spec": {"ports": [{"port": 81}]}},
            {
                "spec": {
                    "template": {
                        "spec": {
                            "$setElementOrder/containers": [{"name": "web"}],
                            "containers": [{"name": "web", "image": "x"}],
                        }
                    }
                }
            },
            {"spec": {"$patch": "replace"}},
            {"spec": {"containers": [{"$patch": "delete", "name": "c"}]}},
            {"spec": {"$retainKeys": ["type"], "type": "Recreate"}},
            {"metadata": {"$patch": "delete"}},
            seed,
            seed,
        ]
    )


def _fuzz_request(rng: random.Random, ns: str) -> tuple[str, str, bytes | None, str, dict[str, str]]:
    """One random request: mostly well aimed (a real collection, a fitting media type), with one defect."""
    seeds = _seeds(rng.choice(NAMES))
    collection = rng.choice(list(seeds))
    seed = seeds[collection]
    if rng.random() < 0.15:
        seed = seeds[rng.choice(list(seeds))]  # a body of another kind
    method = rng.choice(["GET", "POST", "POST", "PUT", "PATCH", "PATCH", "DELETE", "OPTIONS", "HEAD"])
    name = seed["metadata"]["name"]
    path = "/" + collection.format(ns=ns)
    if method != "POST" or rng.random() < 0.1:
        path += f"/{name}"
        if rng.random() < 0.25 and collection in SUBRESOURCES:
            path += "/" + rng.choice(SUBRESOURCES[collection])
    if rng.random() < 0.08:
        junk = "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-._~%") for _ in range(rng.randrange(1, 30))
        )
        path = rng.choice(ODD_PATHS).format(ns=ns, junk=junk)
    if rng.random() < 0.25:
        path += "?" + "&".join(rng.sample(QUERY, rng.randrange(1, 4)))
    raw = None
    media = rng.choice(OBJECT_TYPES)
    if method == "PATCH":
        media = rng.choice(PATCH_TYPES)
        raw = _mutate(rng, _patch_body(rng, seed, media))
    elif method in ("POST", "PUT") or rng.random() < 0.1:
        raw = _mutate(rng, seed)
    if rng.random() < 0.1:
        media = rng.choice(ODD_TYPES)
    headers = {"Accept": rng.choice(ACCEPTS)}
    if rng.random() < 0.1:
        headers["X-Fuzz"] = "".join(rng.choice("abc ;=,") for _ in range(20))
    return method, path, raw, media, headers


def _check_answer(status: int, body: Any, method: str) -> None:
    assert status < 500, body
    if method == "HEAD":
        return
    assert isinstance(body, dict), f"not a JSON object: {body!r:.300}"
    if status >= 400:
        assert body.get("kind") == "Status" and body.get("status") == "Failure", body
        assert body.get("code") == status and body.get("reason") and body.get("message"), body


def _reseed(c: Cluster, ns: str) -> None:
    """Make sure the fuzzed objects exist, so requests reach them (and not only 404s)."""
    for collection, body in _seeds("fz1").items():
        c.request("POST", "/" + collection.format(ns=ns), body)


def test_fuzz_every_answer_is_a_well_formed_status_or_object(scratch: Cluster) -> None:
    rng = random.Random(FUZZ_SEED)
    ns = "fuzz"
    scratch.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    control = [
        scratch.request("POST", "/api/v1/namespaces/default/configmaps", config_map("control", a="1"))[1],
        scratch.request("POST", "/api/v1/namespaces/default/secrets", SECRET)[1],
    ]

    start = time.monotonic()
    for i in range(FUZZ_REQUESTS):
        if i % 20 == 0:
            _reseed(scratch, ns)
        method, path, raw, media, headers = _fuzz_request(rng, ns)
        what = f"request {i}: {method} {path} ({media!r}, {len(raw or b'')} bytes: {(raw or b'')[:200]!r})"
        try:
            status, body, _ = scratch.request(
                method, path, raw=raw, content_type=media, headers=headers, timeout=15
            )
        except Exception as e:  # a dropped connection or a hang
            raise AssertionError(f"{what} got no answer: {e!r}") from e
        try:
            _check_answer(status, body, method)
        except AssertionError as e:
            raise AssertionError(f"{what}: {e}") from e
    elapsed = time.monotonic() - start
    assert elapsed < 90, f"{FUZZ_REQUESTS} requests took {elapsed:.0f} s"

    assert_intact(scratch, control)
    for path in (
        "/api/v1/namespaces/fuzz/configmaps",
        "/apis/apps/v1/namespaces/fuzz/deployments",
        "/api/v1/namespaces/fuzz/pods",
        "/api/v1/namespaces/fuzz/services",
        "/api/v1/pods",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/replicasets",
        "/api/v1/services",
    ):
        for accept in ("application/json", "application/json;as=Table;v=v1;g=meta.k8s.io"):
            status, body, _ = scratch.request("GET", path, headers={"Accept": accept})
            assert status == 200, (path, accept, body)
