"""Validation: upstream's field paths, reasons and messages for every rule covered."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from labkit.embedded.apiserver.defaults import apply_defaults
from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.apiserver.validation import (
    base64_error,
    check_fields,
    parse_quantity,
    unknown_fields,
    validate,
)
from labkit.embedded.resources import ResourceType, lookup

DEPLOYMENTS = lookup("apps", "v1", "deployments")
REPLICASETS = lookup("apps", "v1", "replicasets")
PODS = lookup("", "v1", "pods")
SERVICES = lookup("", "v1", "services")
SECRETS = lookup("", "v1", "secrets")
CONFIGMAPS = lookup("", "v1", "configmaps")
NAMESPACES = lookup("", "v1", "namespaces")
NODES = lookup("", "v1", "nodes")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def deployment(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    obj["spec"].update(spec)
    return obj


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = {"containers": list(containers) or [{"name": "c", "image": "busybox:1"}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": body,
    }


def service(**spec: Any) -> dict[str, Any]:
    body = {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": body,
    }


def ready(rt: Any, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    apply_defaults(rt, obj)
    return obj


def causes(rt: Any, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """The (field, reason, message) of each cause of the 422 for a defaulted ``obj``."""
    with pytest.raises(ApiError) as info:
        validate(rt, ready(rt, obj), old=old)
    assert info.value.code == 422
    assert info.value.reason == "Invalid"
    return [(c["field"], c["reason"], c["message"]) for c in info.value.details["causes"]]


def fields(rt: Any, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [f for f, _, _ in causes(rt, obj, old)]


@pytest.mark.parametrize(
    ("rt", "obj"),
    [
        (DEPLOYMENTS, deployment()),
        (REPLICASETS, {**deployment(), "kind": "ReplicaSet"}),
        (PODS, pod()),
        (SERVICES, service()),
        (SERVICES, service(clusterIP="None", ports=[])),
        (SERVICES, service(type="ExternalName", externalName="example.com.", ports=[])),
        (CONFIGMAPS, {"metadata": {"name": "c", "namespace": "d"}, "data": {"app.conf": "x", "KEY_1": "y"}}),
        (SECRETS, {"metadata": {"name": "s", "namespace": "d"}, "data": {"token": "aGk="}}),
        (NAMESPACES, {"metadata": {"name": "dev"}}),
        (NODES, {"metadata": {"name": "labkit-worker"}}),
    ],
)
def test_good_objects_pass(rt: Any, obj: dict[str, Any]) -> None:
    validate(rt, ready(rt, obj))


# -- metadata ----------------------------------------------------------------------------------


def test_name_required_unless_generate_name() -> None:
    obj = deployment()
    del obj["metadata"]["name"]
    assert causes(DEPLOYMENTS, obj) == [
        ("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")
    ]


def test_generate_name_prefix_may_end_in_dash() -> None:
    obj = pod()
    obj["metadata"] = {"name": "web-x7k2q", "generateName": "web-", "namespace": "default"}
    validate(PODS, ready(PODS, obj))
    obj["metadata"]["generateName"] = "Web-"
    assert fields(PODS, obj) == ["metadata.generateName"]


def test_name_must_be_a_subdomain_with_upstream_message() -> None:
    obj = deployment()
    obj["metadata"]["name"] = "My_App"
    assert causes(DEPLOYMENTS, obj) == [
        ("metadata.name", "FieldValueInvalid", f'Invalid value: "My_App": {SUBDOMAIN_MSG}')
    ]


def test_name_too_long() -> None:
    obj = deployment()
    obj["metadata"]["name"] = "a" * 254
    assert (
        "metadata.name",
        "FieldValueInvalid",
        f'Invalid value: "{"a" * 254}": must be no more than 253 characters',
    ) in (causes(DEPLOYMENTS, obj))


def test_namespace_and_service_names_are_labels() -> None:
    assert causes(NAMESPACES, {"metadata": {"name": "a.b"}}) == [
        ("metadata.name", "FieldValueInvalid", 'Invalid value: "a.b": must not contain dots')
    ]
    assert causes(NAMESPACES, {"metadata": {"name": "Dev"}}) == [
        ("metadata.name", "FieldValueInvalid", f'Invalid value: "Dev": {LABEL_MSG}')
    ]
    svc = service()
    svc["metadata"]["name"] = "1web"
    assert causes(SERVICES, svc) == [
        ("metadata.name", "FieldValueInvalid", f'Invalid value: "1web": {DNS1035_MSG}')
    ]


def test_node_name_is_a_subdomain() -> None:
    validate(NODES, {"metadata": {"name": "node-1.example.com"}})
    assert fields(NODES, {"metadata": {"name": "Node_1"}}) == ["metadata.name"]


def test_bad_namespace_in_metadata() -> None:
    obj = pod()
    obj["metadata"]["namespace"] = "Dev"
    assert fields(PODS, obj) == ["metadata.namespace"]


def test_label_keys_and_values() -> None:
    obj = pod()
    obj["metadata"]["labels"] = {
        "app.kubernetes.io/name": "ok",
        "bad key": "v",
        "k": "-bad",
        "long": "x" * 64,
    }
    got = causes(PODS, obj)
    assert [f for f, _, _ in got] == ["metadata.labels"] * 3
    assert got[0][2] == (
        "Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
        "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    )
    assert got[1][2].startswith('Invalid value: "-bad": a valid label must be an empty string or consist of')
    assert got[2][2] == f'Invalid value: "{"x" * 64}": must be no more than 63 characters'


def test_label_key_prefix_must_be_a_subdomain() -> None:
    obj = pod()
    obj["metadata"]["labels"] = {"Example.com/x": "v", "/x": "v"}
    messages = [m for _, _, m in causes(PODS, obj)]
    assert messages[0] == f'Invalid value: "Example.com/x": prefix part {SUBDOMAIN_MSG}'
    assert messages[1] == 'Invalid value: "/x": prefix part must be non-empty'


def test_annotations_keys_and_total_size() -> None:
    obj = pod()
    obj["metadata"]["annotations"] = {"Example.COM/Note": "case does not matter", "a": "x" * (256 * 1024)}
    assert causes(PODS, obj) == [
        ("metadata.annotations", "FieldValueTooLong", "Too long: must have at most 262144 bytes")
    ]
    obj["metadata"]["annotations"] = {"a/b/c": "v"}
    assert fields(PODS, obj) == ["metadata.annotations"]


def test_all_problems_are_reported_together() -> None:
    obj = deployment(replicas=-1)
    obj["metadata"]["name"] = "Web"
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    with pytest.raises(ApiError) as info:
        validate(DEPLOYMENTS, ready(DEPLOYMENTS, obj))
    assert info.value.message.startswith(
        'Deployment.apps "Web" is invalid: [metadata.name: Invalid value: "Web"'
    )
    assert [c["field"] for c in info.value.details["causes"]] == [
        "metadata.name",
        "spec.replicas",
        "spec.template.spec.containers[0].image",
    ]


# -- deployments and replica sets -------------------------------------------------------------


def test_selector_required_and_then_template_does_not_match() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    assert causes(DEPLOYMENTS, obj) == [
        ("spec.selector", "FieldValueRequired", "Required value"),
        (
            "spec.template.metadata.labels",
            "FieldValueInvalid",
            'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
        ),
    ]


def test_selector_must_match_template_labels() -> None:
    obj = deployment(selector={"matchLabels": {"app": "api"}})
    obj["spec"]["template"]["metadata"]["labels"] = {"tier": "b", "app": "web"}
    assert causes(DEPLOYMENTS, obj) == [
        (
            "spec.template.metadata.labels",
            "FieldValueInvalid",
            (
                'Invalid value: map[string]string{"app":"web", "tier":"b"}: '
                "`selector` does not match template `labels`"
            ),
        )
    ]


def test_selector_match_expressions() -> None:
    good = deployment(
        selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "x"]}]}
    )
    validate(DEPLOYMENTS, ready(DEPLOYMENTS, good))
    bad = deployment(selector={"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]})
    assert fields(DEPLOYMENTS, bad) == ["spec.template.metadata.labels"]


def test_empty_selector_is_invalid() -> None:
    assert causes(DEPLOYMENTS, deployment(selector={})) == [
        (
            "spec.selector",
            "FieldValueInvalid",
            "Invalid value: &LabelSelector{MatchLabels:map[string]string{},"
            "MatchExpressions:[]LabelSelectorRequirement{},}: empty selector is invalid for deployment",
        )
    ]


def test_replicas_must_not_be_negative() -> None:
    assert causes(DEPLOYMENTS, deployment(replicas=-2)) == [
        ("spec.replicas", "FieldValueInvalid", "Invalid value: -2: must be greater than or equal to 0")
    ]
    validate(DEPLOYMENTS, ready(DEPLOYMENTS, deployment(replicas=0)))


def test_strategy_type() -> None:
    assert causes(DEPLOYMENTS, deployment(strategy={"type": "BlueGreen"})) == [
        (
            "spec.strategy",
            "FieldValueNotSupported",
            'Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
            "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: "
            'supported values: "Recreate", "RollingUpdate"',
        )
    ]
    validate(DEPLOYMENTS, ready(DEPLOYMENTS, deployment(strategy={"type": "Recreate"})))


def test_recreate_with_rolling_update_is_forbidden() -> None:
    obj = deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    assert causes(DEPLOYMENTS, obj) == [
        (
            "spec.strategy.rollingUpdate",
            "FieldValueForbidden",
            "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        )
    ]


def test_max_surge_and_max_unavailable_not_both_zero() -> None:
    obj = deployment(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
    )
    assert causes(DEPLOYMENTS, obj) == [
        (
            "spec.strategy.rollingUpdate.maxUnavailable",
            "FieldValueInvalid",
            "Invalid value: 0%: may not be 0 when `maxSurge` is 0",
        )
    ]
    ok = deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    validate(DEPLOYMENTS, ready(DEPLOYMENTS, ok))


def test_bad_percent_and_over_100_percent() -> None:
    obj = deployment(strategy={"rollingUpdate": {"maxSurge": "half", "maxUnavailable": "150%"}})
    assert causes(DEPLOYMENTS, obj) == [
        (
            "spec.strategy.rollingUpdate.maxSurge",
            "FieldValueInvalid",
            "Invalid value: half: a valid percent string must be a numeric string followed by an ending '%' "
            "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        ),
        (
            "spec.strategy.rollingUpdate.maxUnavailable",
            "FieldValueInvalid",
            "Invalid value: 150%: must not be greater than 100%",
        ),
    ]


def test_template_restart_policy_must_be_always() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert causes(DEPLOYMENTS, obj) == [
        (
            "spec.template.spec.restartPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "OnFailure": supported values: "Always"',
        )
    ]


def test_progress_deadline_must_exceed_min_ready() -> None:
    assert causes(DEPLOYMENTS, deployment(minReadySeconds=600)) == [
        (
            "spec.progressDeadlineSeconds",
            "FieldValueInvalid",
            "Invalid value: 600: must be greater than minReadySeconds",
        )
    ]


def test_template_labels_path_is_upstreams() -> None:
    obj = deployment()
    obj["spec"]["template"]["metadata"]["annotations"] = {"bad key": "v"}
    assert fields(DEPLOYMENTS, obj) == ["spec.template.annotations"]


def test_selector_is_immutable_on_update() -> None:
    old = ready(DEPLOYMENTS, deployment())
    new = deployment(selector={"matchLabels": {"app": "web", "v": "2"}})
    new["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    assert causes(DEPLOYMENTS, new, old) == [
        (
            "spec.selector",
            "FieldValueInvalid",
            "Invalid value: &LabelSelector{MatchLabels:map[string]string{app: web,v: 2,},"
            "MatchExpressions:[]LabelSelectorRequirement{},}: field is immutable",
        )
    ]
    validate(DEPLOYMENTS, ready(DEPLOYMENTS, deployment(replicas=5)), old=old)


def test_replicaset_rules() -> None:
    rs = {**deployment(replicas=-1, selector={}), "kind": "ReplicaSet"}
    assert fields(REPLICASETS, rs) == ["spec.replicas", "spec.selector"]


# -- pod spec ------------------------------------------------------------------------------------


def test_containers_required() -> None:
    obj = pod()
    obj["spec"]["containers"] = []
    assert causes(PODS, obj) == [("spec.containers", "FieldValueRequired", "Required value")]


def test_container_name_rules() -> None:
    obj = pod(
        {"image": "a:1"},
        {"name": "Web", "image": "a:1"},
        {"name": "x", "image": "a:1"},
        {"name": "x", "image": "b:1"},
    )
    assert causes(PODS, obj) == [
        ("spec.containers[0].name", "FieldValueRequired", "Required value"),
        ("spec.containers[1].name", "FieldValueInvalid", f'Invalid value: "Web": {LABEL_MSG}'),
        ("spec.containers[3].name", "FieldValueDuplicate", 'Duplicate value: "x"'),
    ]


def test_init_container_names_share_the_namespace() -> None:
    obj = pod(initContainers=[{"name": "c", "image": "busybox:1"}])
    assert causes(PODS, obj) == [
        ("spec.initContainers[0].name", "FieldValueDuplicate", 'Duplicate value: "c"')
    ]


def test_image_required() -> None:
    assert causes(PODS, pod({"name": "c"})) == [
        ("spec.containers[0].image", "FieldValueRequired", "Required value")
    ]


def test_container_ports() -> None:
    ports = [
        {"containerPort": 0},
        {"containerPort": 70000, "protocol": "HTTP"},
        {"containerPort": 80, "name": "http-web-frontend"},
        {"containerPort": 81, "name": "web"},
        {"containerPort": 82, "name": "web"},
        {"containerPort": 83, "name": "8080"},
    ]
    got = causes(PODS, pod({"name": "c", "image": "a:1", "ports": ports}))
    assert got == [
        ("spec.containers[0].ports[0].containerPort", "FieldValueRequired", "Required value"),
        (
            "spec.containers[0].ports[1].containerPort",
            "FieldValueInvalid",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            "spec.containers[0].ports[1].protocol",
            "FieldValueNotSupported",
            'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
        ),
        (
            "spec.containers[0].ports[2].name",
            "FieldValueInvalid",
            'Invalid value: "http-web-frontend": must be no more than 15 characters',
        ),
        ("spec.containers[0].ports[4].name", "FieldValueDuplicate", 'Duplicate value: "web"'),
        (
            "spec.containers[0].ports[5].name",
            "FieldValueInvalid",
            'Invalid value: "8080": must contain at least one letter (a-z)',
        ),
    ]


def test_restart_and_dns_policy() -> None:
    assert causes(PODS, pod(restartPolicy="Sometimes", dnsPolicy="Google")) == [
        (
            "spec.restartPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        ),
        (
            "spec.dnsPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", '
            '"Default", "None"',
        ),
    ]
    validate(PODS, ready(PODS, pod(restartPolicy="Never")))


def test_image_pull_policy_enum() -> None:
    assert causes(PODS, pod({"name": "c", "image": "a:1", "imagePullPolicy": "Sometimes"})) == [
        (
            "spec.containers[0].imagePullPolicy",
            "FieldValueNotSupported",
            'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
        )
    ]


def test_env_names() -> None:
    env = [{"name": "GOOD.name-1", "value": "x"}, {"name": "A=B"}, {"name": ""}]
    assert causes(PODS, pod({"name": "c", "image": "a:1", "env": env})) == [
        (
            "spec.containers[0].env[1].name",
            "FieldValueInvalid",
            'Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII '
            "characters other than '='",
        ),
        ("spec.containers[0].env[2].name", "FieldValueRequired", "Required value"),
        (
            "spec.containers[0].env[2].name",
            "FieldValueInvalid",
            'Invalid value: "": environment variable name must be non-empty',
        ),
    ]


def test_resources() -> None:
    resources = {
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "1", "memory": "0.5Gi", "gpu": "1"},
    }
    assert causes(PODS, pod({"name": "c", "image": "a:1", "resources": resources})) == [
        (
            "spec.containers[0].resources.requests",
            "FieldValueInvalid",
            'Invalid value: "1": must be less than or equal to cpu limit of 500m',
        ),
        (
            "spec.containers[0].resources.requests[gpu]",
            "FieldValueInvalid",
            'Invalid value: "gpu": must be a standard resource for containers',
        ),
    ]


def test_negative_quantity_and_extended_resources() -> None:
    resources = {
        "limits": {"memory": "-1Mi", "example.com/gpu": "1"},
        "requests": {"example.com/gpu": "500m"},
    }
    assert causes(PODS, pod({"name": "c", "image": "a:1", "resources": resources})) == [
        (
            "spec.containers[0].resources.limits[memory]",
            "FieldValueInvalid",
            'Invalid value: "-1Mi": must be greater than or equal to 0',
        ),
        (
            "spec.containers[0].resources.requests[example.com/gpu]",
            "FieldValueInvalid",
            'Invalid value: "500m": must be an integer',
        ),
        (
            "spec.containers[0].resources.requests",
            "FieldValueInvalid",
            'Invalid value: "500m": must be equal to example.com/gpu limit of 1',
        ),
        # a Pod's requests default to its limits, so the bad limit shows up twice
        (
            "spec.containers[0].resources.requests[memory]",
            "FieldValueInvalid",
            'Invalid value: "-1Mi": must be greater than or equal to 0',
        ),
    ]


def test_probes_need_exactly_one_handler() -> None:
    ctr = {
        "name": "c",
        "image": "a:1",
        "livenessProbe": {"periodSeconds": 5},
        "readinessProbe": {"httpGet": {"port": 8080}, "tcpSocket": {"port": 8080}},
        "startupProbe": {"exec": {"command": ["true"]}, "successThreshold": 2},
    }
    assert causes(PODS, pod(ctr)) == [
        (
            "spec.containers[0].livenessProbe",
            "FieldValueRequired",
            "Required value: must specify a handler type",
        ),
        (
            "spec.containers[0].readinessProbe.tcpSocket",
            "FieldValueForbidden",
            "Forbidden: may not specify more than 1 handler type",
        ),
        (
            "spec.containers[0].startupProbe.successThreshold",
            "FieldValueInvalid",
            "Invalid value: 2: must be 1",
        ),
    ]


def test_probe_ports() -> None:
    ctr = {"name": "c", "image": "a:1", "livenessProbe": {"httpGet": {"port": "WEB_PORT"}}}
    assert fields(PODS, pod(ctr)) == ["spec.containers[0].livenessProbe.httpGet.port"] * 2
    ctr["livenessProbe"] = {"tcpSocket": {"port": 0}}
    assert causes(PODS, pod(ctr)) == [
        (
            "spec.containers[0].livenessProbe.tcpSocket.port",
            "FieldValueInvalid",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        )
    ]


def test_volume_mounts_refer_to_volumes() -> None:
    ctr = {"name": "c", "image": "a:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    assert causes(PODS, pod(ctr)) == [
        ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound", 'Not found: "data"')
    ]
    validate(PODS, ready(PODS, pod(ctr, volumes=[{"name": "data", "emptyDir": {}}])))


def test_a_sub_path_stays_inside_its_volume() -> None:
    mounts = [
        {"name": "data", "mountPath": "/a", "subPath": "/etc"},
        {"name": "data", "mountPath": "/b", "subPath": "x/../../host"},
        {"name": "data", "mountPath": "/c", "subPath": "x/y..z"},
    ]
    ctr = {"name": "c", "image": "a:1", "volumeMounts": mounts}
    at = "spec.containers[0].volumeMounts[{}].subPath"
    assert causes(PODS, pod(ctr, volumes=[{"name": "data", "emptyDir": {}}])) == [
        (at.format(0), "FieldValueInvalid", 'Invalid value: "/etc": must be a relative path'),
        (at.format(1), "FieldValueInvalid", "Invalid value: \"x/../../host\": must not contain '..'"),
    ]


# -- pod updates ---------------------------------------------------------------------------------


def test_pod_update_may_change_image_and_add_tolerations() -> None:
    old = ready(PODS, pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:2"
    new["spec"]["tolerations"].append({"key": "gpu", "operator": "Exists"})
    new["spec"]["activeDeadlineSeconds"] = 60
    validate(PODS, new, old=old)


def test_pod_update_binding_sets_node_name_once() -> None:
    old = ready(PODS, pod())
    bound = copy.deepcopy(old)
    bound["spec"]["nodeName"] = "labkit-worker"
    validate(PODS, bound, old=old)
    moved = copy.deepcopy(bound)
    moved["spec"]["nodeName"] = "labkit-worker2"
    assert fields(PODS, moved, bound) == ["spec"]


def test_pod_update_other_fields_forbidden() -> None:
    old = ready(PODS, pod())
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    (field, reason, message), *rest = causes(PODS, new, old)
    assert (field, reason, rest) == ("spec", "FieldValueForbidden", [])
    assert message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
        "previously negative)\n"
    )
    assert 'containers[0].ports: [{"containerPort": 80, "protocol": "TCP"}]' in message


def test_pod_update_cannot_add_containers_or_drop_tolerations() -> None:
    old = ready(PODS, pod())
    more = copy.deepcopy(old)
    more["spec"]["containers"].append({"name": "d", "image": "a:1"})
    assert causes(PODS, more, old)[0] == (
        "spec.containers",
        "FieldValueForbidden",
        "Forbidden: pod updates may not add or remove containers",
    )
    changed = copy.deepcopy(old)
    changed["spec"]["tolerations"][0]["effect"] = "NoSchedule"
    with pytest.raises(ApiError) as info:
        validate(PODS, changed, old=old)
    assert info.value.details["causes"][0] == {
        "field": "spec.tolerations",
        "reason": "FieldValueForbidden",
        "message": "Forbidden: existing toleration can not be modified except its tolerationSeconds",
    }


def test_pod_update_deadline_may_only_shrink() -> None:
    old = ready(PODS, pod(activeDeadlineSeconds=60))
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 120
    assert causes(PODS, new, old)[0] == (
        "spec.activeDeadlineSeconds",
        "FieldValueInvalid",
        "Invalid value: 120: must be less than or equal to previous value",
    )


# -- services ------------------------------------------------------------------------------------


def test_service_ports_required_unless_headless_or_external_name() -> None:
    assert causes(SERVICES, service(ports=[])) == [("spec.ports", "FieldValueRequired", "Required value")]


def test_service_port_rules() -> None:
    ports = [
        {"port": 0, "name": "a"},
        {"port": 80, "targetPort": 70000},
        {"port": 81, "name": "a", "protocol": "ICMP", "targetPort": "no_such"},
    ]
    assert causes(SERVICES, service(ports=ports)) == [
        (
            "spec.ports[0].port",
            "FieldValueInvalid",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        # targetPort defaults to port, so it is 0 too
        (
            "spec.ports[0].targetPort",
            "FieldValueInvalid",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        ("spec.ports[1].name", "FieldValueRequired", "Required value"),
        (
            "spec.ports[1].targetPort",
            "FieldValueInvalid",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        ("spec.ports[2].name", "FieldValueDuplicate", 'Duplicate value: "a"'),
        (
            "spec.ports[2].protocol",
            "FieldValueNotSupported",
            'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        ),
        (
            "spec.ports[2].targetPort",
            "FieldValueInvalid",
            'Invalid value: "no_such": '
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        ),
    ]


def test_service_duplicate_port_and_protocol() -> None:
    ports = [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]
    assert causes(SERVICES, service(ports=ports)) == [
        (
            "spec.ports[1]",
            "FieldValueDuplicate",
            'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, '
            'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
        )
    ]


def test_service_type_and_session_affinity() -> None:
    assert causes(SERVICES, service(type="Internal", sessionAffinity="Cookie")) == [
        (
            "spec.sessionAffinity",
            "FieldValueNotSupported",
            'Unsupported value: "Cookie": supported values: "ClientIP", "None"',
        ),
        (
            "spec.type",
            "FieldValueNotSupported",
            'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
            '"NodePort"',
        ),
    ]


def test_client_ip_timeout_range() -> None:
    obj = service(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}})
    assert causes(SERVICES, obj) == [
        (
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
            "FieldValueInvalid",
            "Invalid value: 0: must be greater than 0 and less than 86400",
        )
    ]


def test_node_port_not_allowed_on_cluster_ip() -> None:
    obj = service(ports=[{"port": 80, "nodePort": 30080}])
    assert causes(SERVICES, obj) == [
        (
            "spec.ports[0].nodePort",
            "FieldValueForbidden",
            "Forbidden: may not be used when `type` is 'ClusterIP'",
        )
    ]
    validate(SERVICES, ready(SERVICES, service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}])))


def test_external_name_required() -> None:
    assert causes(SERVICES, service(type="ExternalName", ports=[])) == [
        ("spec.externalName", "FieldValueRequired", "Required value")
    ]


def test_external_traffic_policy_only_for_external_services() -> None:
    assert causes(SERVICES, service(externalTrafficPolicy="Local")) == [
        (
            "spec.externalTrafficPolicy",
            "FieldValueInvalid",
            'Invalid value: "Local": may only be set for externally-accessible services',
        )
    ]


# -- config maps and secrets ------------------------------------------------------------------------


def test_config_keys() -> None:
    obj = {"metadata": {"name": "c", "namespace": "d"}, "data": {"bad key": "x", "..": "y"}}
    assert causes(CONFIGMAPS, obj) == [
        ("data[bad key]", "FieldValueInvalid", f'Invalid value: "bad key": {CONFIG_KEY_MSG}'),
        ("data[..]", "FieldValueInvalid", "Invalid value: \"..\": must not be '..'"),
    ]


def test_configmap_total_size() -> None:
    obj = {"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "x" * (1024 * 1024 + 1)}}
    assert causes(CONFIGMAPS, obj) == [("", "FieldValueTooLong", "Too long: must have at most 1048576 bytes")]


def test_secret_keys_size_and_tls_keys() -> None:
    obj = {"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {"a b": "eA=="}}
    assert causes(SECRETS, obj) == [
        ("data[a b]", "FieldValueInvalid", f'Invalid value: "a b": {CONFIG_KEY_MSG}'),
        ("data[tls.crt]", "FieldValueRequired", "Required value"),
        ("data[tls.key]", "FieldValueRequired", "Required value"),
    ]
    big = {"metadata": {"name": "s", "namespace": "d"}, "data": {"a": "QUFB" * (350 * 1024)}}
    assert causes(SECRETS, big) == [
        ("data", "FieldValueTooLong", "Too long: must have at most 1048576 bytes")
    ]


def test_immutable_configmap_and_secret_type() -> None:
    old = ready(
        CONFIGMAPS, {"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "1"}, "immutable": True}
    )
    new = {**old, "data": {"a": "2"}}
    assert causes(CONFIGMAPS, new, old) == [
        ("data", "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set")
    ]
    old_secret = ready(SECRETS, {"metadata": {"name": "s", "namespace": "d"}, "data": {"a": "eA=="}})
    new_secret = {**old_secret, "type": "example.com/custom"}
    assert causes(SECRETS, new_secret, old_secret) == [
        ("type", "FieldValueInvalid", 'Invalid value: "example.com/custom": field is immutable')
    ]


# -- decoding: unknown fields, quantities, base64 -------------------------------------------------


def test_unknown_fields_nested_in_lists_and_maps() -> None:
    obj = deployment(replica=3)
    ctr = obj["spec"]["template"]["spec"]["containers"][0]
    ctr["imagePullPolcy"] = "Always"
    ctr["ports"] = [{"containerPort": 80}, {"containerPort": 81, "protocl": "TCP"}]
    ctr["resources"] = {"limits": {"cpu": "1"}, "limit": {}}
    obj["metadata"]["label"] = {"a": "b"}
    obj["status"] = {"readyReplica": 1}
    assert unknown_fields(obj) == [
        "metadata.label",
        "spec.template.spec.containers[0].imagePullPolcy",
        "spec.template.spec.containers[0].ports[1].protocl",
        "spec.template.spec.containers[0].resources.limit",
        "spec.replica",
        "status.readyReplica",
    ]


def test_free_form_and_int_or_string_fields_accept_anything() -> None:
    obj = deployment(strategy={"rollingUpdate": {"maxSurge": {"anything": 1}}})
    obj["metadata"]["managedFields"] = [{"manager": "m", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    assert unknown_fields(obj) == []


def test_unknown_fields_of_other_kinds() -> None:
    assert unknown_fields(
        {"apiVersion": "v1", "kind": "Event", "metadata": {}, "involvedObject": {"kindd": "Pod"}}
    ) == ["involvedObject.kindd"]
    assert unknown_fields({"apiVersion": "v1", "kind": "Secret", "stringData": {"a": "b"}, "typ": "x"}) == [
        "typ"
    ]
    assert unknown_fields({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": 1}}) == []


def test_strict_mode_is_a_bad_request_naming_every_field() -> None:
    obj = deployment(replica=3, paused2=True)
    with pytest.raises(ApiError) as info:
        check_fields(DEPLOYMENTS, obj, "Strict")
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    assert info.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replica", unknown field "spec.paused2"'
    )


def test_warn_mode_returns_warnings() -> None:
    obj = deployment(replica=3)
    assert check_fields(DEPLOYMENTS, obj, "Warn") == ['unknown field "spec.replica"']
    assert check_fields(DEPLOYMENTS, obj, "Ignore") == []
    assert check_fields(DEPLOYMENTS, obj, "") == []
    assert check_fields(DEPLOYMENTS, deployment(), "Strict") == []


def test_unknown_field_validation_directive() -> None:
    with pytest.raises(ApiError) as info:
        check_fields(DEPLOYMENTS, deployment(), "Loose")
    assert info.value.code == 400


def test_bad_quantity_is_a_decode_error_in_any_mode() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1GB"}}
    with pytest.raises(ApiError) as info:
        check_fields(DEPLOYMENTS, obj, "Ignore")
    assert info.value.code == 400
    assert info.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: quantities must match the regular '
        "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_bad_base64_in_a_secret() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"password": "hunter2"}}
    with pytest.raises(ApiError) as info:
        check_fields(SECRETS, obj, "Strict")
    assert info.value.message == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 4'
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("aGVsbG8=", None),
        ("aGVs\nbG8=", None),
        ("", None),
        ("abc", "illegal base64 data at input byte 0"),
        ("a$bc", "illegal base64 data at input byte 1"),
        ("aGVsbG8", "illegal base64 data at input byte 4"),
        ("aGVsbA==x", "illegal base64 data at input byte 8"),
        ("aGVsbA=", "illegal base64 data at input byte 7"),
    ],
)
def test_base64_error_offsets_follow_go(text: str, error: str | None) -> None:
    assert base64_error(text) == error


@pytest.mark.parametrize(
    ("text", "canonical", "value"),
    [
        ("100m", "100m", 0.1),
        ("1Gi", "1Gi", 2**30),
        ("1.5Gi", "1536Mi", 1.5 * 2**30),
        ("0.5", "500m", 0.5),
        ("1e3", "1e3", 1000),
        ("1000m", "1", 1),
        ("2000", "2k", 2000),
        ("512Ki", "512Ki", 512 * 1024),
        ("100", "100", 100),
        (2, "2", 2),
        (0.25, "250m", 0.25),
    ],
)
def test_quantities(text: Any, canonical: str, value: float) -> None:
    quantity = parse_quantity(text)
    assert str(quantity) == canonical
    assert float(quantity.value) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1GB",
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            "one",
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        ("1iK", "unable to parse quantity's suffix"),
    ],
)
def test_bad_quantities(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_quantity(text)
    assert str(info.value) == message


# -- values of the wrong JSON type --------------------------------------------------------------


@pytest.mark.parametrize(
    ("rt", "obj", "expected"),
    [
        (
            DEPLOYMENTS,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d"},
                "spec": {"replicas": "3"},
            },
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
        ),
        (
            DEPLOYMENTS,
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": ["a"]}},
            "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels"
            " of type map[string]string",
        ),
        (
            DEPLOYMENTS,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "d"},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": {"a": 1}}]}}},
            },
            "json: cannot unmarshal object into Go struct field"
            " Container.spec.template.spec.containers[0].image of type string",
        ),
        (
            DEPLOYMENTS,
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"paused": 1}},
            "json: cannot unmarshal number 1 into Go struct field DeploymentSpec.spec.paused of type bool",
        ),
    ],
)
def test_values_of_the_wrong_type_are_a_400_naming_the_field(
    rt: ResourceType, obj: dict, expected: str
) -> None:
    for mode in ("Strict", "Warn", "Ignore"):
        with pytest.raises(ApiError) as info:
            check_fields(rt, obj, mode)
        assert info.value.code == 400
        assert (
            info.value.message == f'Deployment in version "v1" cannot be handled as a Deployment: {expected}'
        )


def test_null_is_fine_for_any_field() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": None},
        "spec": None,
    }
    assert check_fields(DEPLOYMENTS, obj, "Strict") == []


def test_secret_data_strings_are_bytes_in_base64() -> None:
    secrets = lookup("", "v1", "secrets")
    assert secrets is not None
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"token": "c2VjcmV0"}}
    assert check_fields(secrets, obj, "Strict") == []
