"""Defaulting: what a real kube-apiserver (v1.32) fills in, idempotently."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from labkit.embedded.apiserver.defaults import apply_defaults, default_pod_template, pull_policy
from labkit.embedded.resources import lookup

DEPLOYMENTS = lookup("apps", "v1", "deployments")
REPLICASETS = lookup("apps", "v1", "replicasets")
PODS = lookup("", "v1", "pods")
SERVICES = lookup("", "v1", "services")
SECRETS = lookup("", "v1", "secrets")
NAMESPACES = lookup("", "v1", "namespaces")
CONFIGMAPS = lookup("", "v1", "configmaps")


def defaulted(rt: Any, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    apply_defaults(rt, obj)
    return obj


# What `kubectl create deployment web --image=nginx:1.27` sends (kubectl 1.32, JSON form).
CREATE_DEPLOYMENT_BODY = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "resources": {}}]},
        },
        "strategy": {},
    },
    "status": {},
}

# The spec of `kubectl create deployment web --image=nginx:1.27 --dry-run=server -o yaml` on v1.32.
SERVER_DRY_RUN_SPEC = {
    "progressDeadlineSeconds": 600,
    "replicas": 1,
    "revisionHistoryLimit": 10,
    "selector": {"matchLabels": {"app": "web"}},
    "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
    "template": {
        "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "image": "nginx:1.27",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "nginx",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        },
    },
}


def test_create_deployment_matches_server_dry_run() -> None:
    out = defaulted(DEPLOYMENTS, CREATE_DEPLOYMENT_BODY)
    assert out["spec"] == SERVER_DRY_RUN_SPEC
    assert out["metadata"] == CREATE_DEPLOYMENT_BODY["metadata"]


def test_manifest_without_replicas_or_strategy_gets_the_same_spec() -> None:
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
            },
        },
    }
    assert defaulted(DEPLOYMENTS, manifest)["spec"] == SERVER_DRY_RUN_SPEC


@pytest.mark.parametrize(
    ("rt", "obj"),
    [
        (DEPLOYMENTS, CREATE_DEPLOYMENT_BODY),
        (PODS, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        (SERVICES, {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
        (SECRETS, {"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
        (NAMESPACES, {"metadata": {"name": "dev"}}),
    ],
)
def test_defaulting_twice_changes_nothing(rt: Any, obj: dict[str, Any]) -> None:
    once = defaulted(rt, obj)
    assert defaulted(rt, once) == once


def test_deployment_and_replicaset_templates_default_identically() -> None:
    deployment = defaulted(DEPLOYMENTS, CREATE_DEPLOYMENT_BODY)
    rs = {
        "metadata": {"name": "web-abc"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": copy.deepcopy(CREATE_DEPLOYMENT_BODY["spec"]["template"]),
        },
    }
    assert defaulted(REPLICASETS, rs)["spec"]["template"] == deployment["spec"]["template"]


def test_replicaset_replicas_default_to_one() -> None:
    rs = defaulted(REPLICASETS, {"metadata": {"name": "r"}, "spec": {"template": {"spec": {}}}})
    assert rs["spec"]["replicas"] == 1


def test_existing_values_are_kept() -> None:
    body = copy.deepcopy(CREATE_DEPLOYMENT_BODY)
    body["spec"].update(replicas=3, strategy={"type": "Recreate"}, revisionHistoryLimit=2)
    body["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    spec = defaulted(DEPLOYMENTS, body)["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["revisionHistoryLimit"] == 2
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert pull_policy(image) == policy


def test_container_ports_probes_and_env() -> None:
    template = {
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox:1"}],
            "containers": [
                {
                    "name": "web",
                    "image": "web:1",
                    "ports": [{"containerPort": 8080}],
                    "livenessProbe": {"httpGet": {"port": 8080}},
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                }
            ],
        }
    }
    default_pod_template(template)
    web = template["spec"]["containers"][0]
    assert web["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert web["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert web["readinessProbe"]["periodSeconds"] == 5
    assert web["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    init = template["spec"]["initContainers"][0]
    assert init["imagePullPolicy"] == "IfNotPresent"
    assert init["terminationMessagePolicy"] == "File"


def test_volumes() -> None:
    template = {
        "spec": {
            "containers": [],
            "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "c"}}],
        }
    }
    default_pod_template(template)
    assert template["spec"]["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
    ]


def test_pod_gets_service_links_account_priority_and_tolerations() -> None:
    pod = defaulted(
        PODS,
        {
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "app:1", "resources": {"limits": {"cpu": "1"}}}]},
        },
    )
    spec = pod["spec"]
    assert spec["enableServiceLinks"] is True
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")
    assert (spec["priority"], spec["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    assert spec["containers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    assert spec["tolerations"] == [
        {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
    ]


def test_pod_template_gets_no_pod_only_defaults() -> None:
    spec = defaulted(DEPLOYMENTS, CREATE_DEPLOYMENT_BODY)["spec"]["template"]["spec"]
    assert "enableServiceLinks" not in spec
    assert "tolerations" not in spec


def test_existing_toleration_for_all_taints_suppresses_the_defaults() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [], "tolerations": [{"operator": "Exists"}]}}
    assert defaulted(PODS, pod)["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_service_defaults() -> None:
    svc = defaulted(
        SERVICES, {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 8080}], "selector": {"a": "b"}}}
    )
    assert svc["spec"] == {
        "ports": [{"port": 8080, "protocol": "TCP", "targetPort": 8080}],
        "selector": {"a": "b"},
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }


def test_node_port_and_client_ip_service() -> None:
    spec = defaulted(
        SERVICES,
        {
            "metadata": {"name": "s"},
            "spec": {
                "type": "LoadBalancer",
                "sessionAffinity": "ClientIP",
                "ports": [{"port": 80, "targetPort": "http"}],
            },
        },
    )["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert spec["ports"][0]["targetPort"] == "http"


def test_external_name_service_has_no_ip_families() -> None:
    spec = defaulted(
        SERVICES, {"metadata": {"name": "s"}, "spec": {"type": "ExternalName", "externalName": "a.b"}}
    )["spec"]
    assert "ipFamilies" not in spec
    assert "internalTrafficPolicy" not in spec


def test_secret_type_and_string_data() -> None:
    secret = defaulted(
        SECRETS, {"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "hello"}}
    )
    assert secret == {"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "aGVsbG8="}, "type": "Opaque"}


def test_namespace_defaults() -> None:
    ns = defaulted(NAMESPACES, {"metadata": {"name": "dev"}})
    assert ns == {
        "metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def test_configmap_is_left_alone() -> None:
    cm = {"metadata": {"name": "c"}, "data": {"k": "v"}}
    assert defaulted(CONFIGMAPS, cm) == cm
