"""Tests for the protobuf request-body decoder.

The ``data/protobuf/*.pb`` files are real request bodies: each was captured from
``kubectl <command>`` against a logging HTTP server on 127.0.0.1, and the bodies
sent by kubectl 1.32.4 and 1.37.1 were byte-identical. The ``*.json`` next to each
is what the same command printed with ``--dry-run=client -o json`` (kubectl 1.37.1),
the exact JSON the object would have been.

The synthetic bodies below are built with field numbers taken from the upstream
k8s.io/api and apimachinery ``generated.proto`` files, written out here by hand
so that the decoder's table is checked against an independent copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labkit.embedded.apiserver.protobuf import (
    MAGIC,
    PROTOBUF_CONTENT_TYPE,
    ProtobufError,
    decode,
    decode_detailed,
)

DATA = Path(__file__).parent / "data" / "protobuf"

CAPTURED = {
    "create-deployment-web": "create deployment web --image=busybox:1.36 --replicas=3 --port=8080",
    "create-deployment-w2": "create deployment w2 --image=a --image=b",
    "create-namespace-x": "create namespace x",
    "create-configmap-c": "create configmap c --from-literal=a=b",
    "create-configmap-cf-from-file": "create configmap cf --from-file=file.txt",
    "create-secret-generic-s": "create secret generic s --from-literal=p=q",
    "create-secret-docker-registry-d": "create secret docker-registry d --docker-username=u ...",
    "create-service-nodeport-n": "create service nodeport n --tcp=80:8080",
    "create-service-clusterip-ci": "create service clusterip ci --tcp=5678:8080",
    "create-serviceaccount-sa1": "create serviceaccount sa1",
}


def captured(name: str) -> bytes:
    return (DATA / f"{name}.pb").read_bytes()


def dry_run(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


# --- a tiny encoder, only for building test bodies --------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers: 64-bit two's complement, as proto int32/int64
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def num(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def raw(field: int, data: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(data)) + data


def text(field: int, value: str) -> bytes:
    return raw(field, value.encode())


def msg(field: int, *parts: bytes) -> bytes:
    return raw(field, b"".join(parts))


def entry(field: int, key: str, value: bytes) -> bytes:
    """One map<string, X> entry; ``value`` is the already-encoded field 2."""
    return msg(field, text(1, key), value)


def quantity(field: int, value: str) -> bytes:
    return msg(field, text(1, value))


def int_or_string(field: int, value: int | str) -> bytes:
    if isinstance(value, str):
        return msg(field, num(1, 1), text(3, value))
    return msg(field, num(1, 0), num(2, value))


def envelope(api_version: str, kind: str, body: bytes, *extra: bytes) -> bytes:
    return MAGIC + msg(1, text(1, api_version), text(2, kind)) + raw(2, body) + b"".join(extra)


JAN_1_2026 = 1767225600


# --- real kubectl bodies ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_body_decodes_to_the_dry_run_json(name: str) -> None:
    decoded = decode_detailed(captured(name))
    assert decoded.object == dry_run(name), CAPTURED[name]
    assert decoded.unknown_fields == []


def test_create_deployment_web_field_by_field() -> None:
    obj = decode(captured("create-deployment-web"))
    assert (obj["apiVersion"], obj["kind"]) == ("apps/v1", "Deployment")
    assert obj["metadata"] == {"name": "web", "labels": {"app": "web"}}
    spec = obj["spec"]
    assert spec["replicas"] == 3
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["strategy"] == {}
    assert spec["template"]["metadata"] == {"labels": {"app": "web"}}
    (container,) = spec["template"]["spec"]["containers"]
    assert container == {
        "name": "busybox",
        "image": "busybox:1.36",
        "ports": [{"containerPort": 8080}],
        "resources": {},
    }
    assert obj["status"] == {}


def test_create_deployment_with_two_images_keeps_container_order() -> None:
    obj = decode(captured("create-deployment-w2"))
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("a", "a"), ("b", "b")]
    assert obj["spec"]["replicas"] == 1


def test_create_namespace_field_by_field() -> None:
    assert decode(captured("create-namespace-x")) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "x"},
        "spec": {},
        "status": {},
    }


def test_create_configmap_and_secret_field_by_field() -> None:
    configmap = decode(captured("create-configmap-c"))
    assert configmap["kind"] == "ConfigMap"
    assert configmap["data"] == {"a": "b"}
    secret = decode(captured("create-secret-generic-s"))
    assert (secret["apiVersion"], secret["kind"]) == ("v1", "Secret")
    assert secret["data"] == {"p": "cQ=="}  # base64 of "q", as in JSON
    assert "type" not in secret  # kubectl leaves it empty; the server defaults it to Opaque


def test_create_service_nodeport_field_by_field() -> None:
    obj = decode(captured("create-service-nodeport-n"))
    assert obj["metadata"] == {"name": "n", "labels": {"app": "n"}}
    assert obj["spec"] == {
        "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "selector": {"app": "n"},
        "type": "NodePort",
    }
    assert obj["status"] == {"loadBalancer": {}}


# --- schema coverage with hand-built bodies ---------------------------------------


def rich_deployment_body() -> bytes:
    metadata = msg(
        1,
        text(1, "web"),
        text(3, "default"),
        num(7, 0),  # generation 0: omitempty in JSON
        msg(8, num(1, JAN_1_2026)),  # creationTimestamp
        entry(11, "app", text(2, "web")),
        entry(12, "note", text(2, "hi")),
        msg(13, text(1, "ReplicaSet"), text(3, "rs"), text(4, "u-1"), text(5, "apps/v1"), num(6, 1)),
        msg(
            17,
            text(1, "kubectl"),
            text(2, "Update"),
            text(3, "apps/v1"),
            text(6, "FieldsV1"),
            msg(7, raw(1, b'{"f:spec":{"f:replicas":{}}}')),
        ),
    )
    container = b"".join(
        [
            text(1, "web"),
            text(2, "nginx:1.27"),
            text(3, "sh"),
            text(3, "-c"),
            msg(6, num(3, 80), text(4, "TCP")),
            msg(7, text(1, "A"), text(2, "1")),
            msg(7, text(1, "B"), msg(3, msg(3, msg(1, text(1, "cfg")), text(2, "k")))),
            msg(7, text(1, "POD"), msg(3, msg(1, text(2, "metadata.name")))),
            msg(7, text(1, "PW"), msg(3, msg(4, msg(1, text(1, "sec")), text(2, "pw"), num(3, 0)))),
            msg(
                8,
                entry(1, "cpu", quantity(2, "500m")),
                entry(2, "memory", quantity(2, "64Mi")),
            ),
            msg(9, text(1, "data"), num(2, 1), text(3, "/data")),
            msg(10, msg(1, msg(2, text(1, "/healthz"), int_or_string(2, 8080))), num(2, 5), num(4, 0)),
            msg(11, msg(1, msg(3, int_or_string(1, "http")))),
            msg(22, msg(1, msg(1, text(1, "true")))),
            msg(15, msg(1, text(2, "ALL")), num(4, 1000), num(5, 1), num(7, 0)),
            text(14, "IfNotPresent"),
            num(16, 0),  # stdin false: omitempty
        ]
    )
    pod_spec = msg(
        2,
        msg(1, text(1, "data"), msg(2, msg(2))),
        msg(
            1,
            text(1, "cfg"),
            msg(2, msg(19, msg(1, text(1, "cfg")), msg(2, text(1, "k"), text(2, "k.txt")), num(3, 420))),
        ),
        msg(1, text(1, "sec"), msg(2, msg(6, text(1, "s")))),
        raw(2, container),
        num(4, 0),  # terminationGracePeriodSeconds 0: a pointer, so kept
        entry(7, "disk", text(2, "ssd")),
        msg(14, raw(4, varint(1) + varint(2))),  # supplementalGroups, packed
        msg(18, msg(1, msg(1, msg(1, msg(1, text(1, "zone"), text(2, "In"), text(3, "a")))))),
        msg(22, text(1, "k"), text(2, "Exists"), text(4, "NoSchedule"), num(5, 300)),
    )
    spec = msg(
        2,
        num(1, 0),  # replicas 0 is meaningful
        msg(2, entry(1, "app", text(2, "web")), msg(2, text(1, "tier"), text(2, "In"), text(3, "a"))),
        msg(3, msg(1, entry(11, "app", text(2, "web"))), pod_spec),
        msg(4, text(1, "RollingUpdate"), msg(2, int_or_string(1, "25%"), int_or_string(2, 1))),
        num(5, -1),
        num(7, 0),  # paused false: omitempty
    )
    return envelope("apps/v1", "Deployment", metadata + spec + msg(3))


def test_rich_deployment_decodes_every_modelled_field() -> None:
    obj = decode(rich_deployment_body())
    assert obj["metadata"] == {
        "name": "web",
        "namespace": "default",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {"app": "web"},
        "annotations": {"note": "hi"},
        "ownerReferences": [
            {"kind": "ReplicaSet", "name": "rs", "uid": "u-1", "apiVersion": "apps/v1", "controller": True}
        ],
        "managedFields": [
            {
                "manager": "kubectl",
                "operation": "Update",
                "apiVersion": "apps/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            }
        ],
    }
    spec = obj["spec"]
    assert spec["replicas"] == 0
    assert "paused" not in spec
    assert spec["minReadySeconds"] == -1
    assert spec["selector"] == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}],
    }
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1},
    }
    assert spec["template"]["metadata"] == {"labels": {"app": "web"}}
    assert obj["status"] == {}


def test_rich_deployment_pod_spec() -> None:
    pod = decode(rich_deployment_body())["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "data", "emptyDir": {}},
        {
            "name": "cfg",
            "configMap": {"name": "cfg", "items": [{"key": "k", "path": "k.txt"}], "defaultMode": 420},
        },
        {"name": "sec", "secret": {"secretName": "s"}},
    ]
    assert pod["terminationGracePeriodSeconds"] == 0
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["securityContext"] == {"supplementalGroups": [1, 2]}
    assert pod["affinity"] == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    assert pod["tolerations"] == [
        {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 300}
    ]


def test_rich_deployment_container() -> None:
    (container,) = decode(rich_deployment_body())["spec"]["template"]["spec"]["containers"]
    assert container == {
        "name": "web",
        "image": "nginx:1.27",
        "command": ["sh", "-c"],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw", "optional": False}}},
        ],
        "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
        "volumeMounts": [{"name": "data", "readOnly": True, "mountPath": "/data"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 5},
        "readinessProbe": {"tcpSocket": {"port": "http"}},
        "startupProbe": {"exec": {"command": ["true"]}},
        "securityContext": {
            "capabilities": {"drop": ["ALL"]},
            "runAsUser": 1000,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
        },
        "imagePullPolicy": "IfNotPresent",
    }


def test_unknown_fields_are_skipped_and_reported_with_their_path() -> None:
    container = msg(2, text(1, "web"), text(99, "from a newer kubectl"))
    body = envelope("v1", "Pod", msg(1, text(1, "p")) + msg(2, container) + num(42, 7))
    decoded = decode_detailed(body)
    assert decoded.object == {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "web"}]},
    }
    assert decoded.unknown_fields == ["spec.containers[0]#99", "#42"]


def test_secret_bytes_become_base64_and_string_data_stays_text() -> None:
    fields = [
        msg(1, text(1, "s")),
        entry(2, "bin", raw(2, b"\x00\xff")),
        entry(4, "plain", text(2, "hello")),
        text(3, "Opaque"),
        num(5, 0),  # immutable false: a pointer, so kept
    ]
    body = envelope("v1", "Secret", b"".join(fields))
    assert decode(body) == {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "s"},
        "data": {"bin": "AP8="},
        "stringData": {"plain": "hello"},
        "type": "Opaque",
        "immutable": False,
    }


def test_lease_micro_time_and_zero_pointer_ints() -> None:
    spec = msg(2, text(1, "node-1"), num(2, 0), msg(4, num(1, JAN_1_2026), num(2, 123456789)))
    obj = decode(envelope("coordination.k8s.io/v1", "Lease", msg(1, text(1, "node-1")) + spec))
    assert obj["spec"] == {
        "holderIdentity": "node-1",
        "leaseDurationSeconds": 0,
        "renewTime": "2026-01-01T00:00:00.123456Z",
    }


def test_scale_and_service_with_named_target_port() -> None:
    scale = decode(envelope("autoscaling/v1", "Scale", msg(1, text(1, "web")) + msg(2, num(1, 5))))
    assert scale == {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web"},
        "spec": {"replicas": 5},
    }
    port = msg(1, text(1, "http"), num(3, 80), int_or_string(4, "web"), num(5, 30080))
    service = decode(envelope("v1", "Service", msg(2, port, text(4, "NodePort"))))
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080}]


def test_endpoint_slice_uses_the_discovery_port_layout() -> None:
    endpoint = msg(2, text(1, "10.0.0.5"), msg(2, num(1, 1)), text(6, "node-1"))
    port = msg(3, text(1, "http"), text(2, "TCP"), num(3, 8080))
    obj = decode(envelope("discovery.k8s.io/v1", "EndpointSlice", endpoint + port + text(4, "IPv4")))
    assert obj["endpoints"] == [
        {"addresses": ["10.0.0.5"], "conditions": {"ready": True}, "nodeName": "node-1"}
    ]
    assert obj["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]
    assert obj["addressType"] == "IPv4"


def test_content_type_constant_is_what_kubectl_sends() -> None:
    assert PROTOBUF_CONTENT_TYPE == "application/vnd.kubernetes.protobuf"


# --- bad bodies -------------------------------------------------------------------


def test_real_job_body_is_an_unsupported_kind() -> None:
    with pytest.raises(ProtobufError, match=r"cannot decode a protobuf Job \(batch/v1\).*send it as JSON"):
        decode(captured("create-job-j"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind":"Pod"}', r"must start with the magic bytes b'k8s\\x00', got b'\{\"ki'"),
        (b"", r"must start with the magic bytes"),
        (MAGIC + b"\x0a\x80", r"envelope: truncated varint at byte 2"),
        (MAGIC + b"\x12\x05ab", r"envelope: field 2 claims 5 bytes but only 2 remain"),
        (MAGIC + b"\x0b", r"envelope: field 1 has unsupported wire type 3"),
        (MAGIC + raw(2, b"\x0a\x00"), r"envelope: typeMeta has no apiVersion or kind"),
        (envelope("example.com/v1", "Widget", b""), r"cannot decode a protobuf Widget \(example.com/v1\)"),
        (envelope("apps/v1", "Deployment", b"", text(3, "gzip")), r"unsupported contentEncoding 'gzip'"),
        (
            envelope("v1", "Pod", msg(1, num(1, 5))),
            r"metadata\.name: expected length-delimited string, got varint",
        ),
        (envelope("v1", "Pod", msg(1, raw(1, b"\xff"))), r"metadata\.name: string is not valid UTF-8"),
        (envelope("v1", "Pod", num(2, 1)), r"spec: expected a length-delimited message, got varint"),
        (
            envelope("v1", "Event", msg(6, num(1, 10**15))),
            r"firstTimestamp: time 1000000000000000s since 1970 is out of range",
        ),
        (
            envelope("v1", "Pod", msg(2, raw(2, b"\x0a\x09web"))),
            r"spec\.containers\[0\]: field 1 claims 9 bytes",
        ),
    ],
)
def test_garbage_raises_a_clear_protobuf_error(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode(body)


def test_truncated_real_body_raises_instead_of_returning_half_an_object() -> None:
    body = captured("create-deployment-web")
    with pytest.raises(ProtobufError, match=r"claims \d+ bytes but only \d+ remain"):
        decode(body[: len(body) // 2])
