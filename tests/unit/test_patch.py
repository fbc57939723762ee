"""PATCH bodies: strategic merge, JSON merge and JSON patch, applied as kube-apiserver applies them.

The kubectl bodies below were captured from kubectl 1.37.1 (and 1.32.4 where they agree)
talking to a recording server, so the tests apply exactly what kubectl sends.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from labkit.embedded.apiserver.json_patch import json_patch
from labkit.embedded.apiserver.merge_patch import merge_patch
from labkit.embedded.apiserver.patch import apply_patch
from labkit.embedded.apiserver.patch_errors import PatchError
from labkit.embedded.apiserver.strategic_merge import strategic_merge

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def deployment(strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Deployment as the server stores it after ``kubectl apply`` (defaults filled in)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "10",
            "generation": 1,
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"app": "web"},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                LAST_APPLIED: '{"kind":"Deployment"}\n',
            },
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": strategy
            or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "python:3.11",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "resources": {},
                        }
                    ],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {},
                },
            },
        },
        "status": {"observedGeneration": 1, "replicas": 1},
    }


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod template spec of a Deployment."""
    return obj["spec"]["template"]["spec"]


# --- exactly what kubectl sends (strategic merge patch) ------------------------------------------


def test_client_side_apply_changes_replicas_image_and_last_applied() -> None:
    new_last_applied = (
        '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"labels":{"app":"web"},'
        '"name":"web","namespace":"default"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},'
        '"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"env":[{"name":"A",'
        '"value":"1"},{"name":"B","value":"2"}],"image":"python:3.12","name":"web"}]}}}}\n'
    )
    body = json.dumps(
        {
            "metadata": {"annotations": {LAST_APPLIED: new_last_applied}},
            "spec": {
                "replicas": 3,
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "web"}],
                        "containers": [{"image": "python:3.12", "name": "web"}],
                    }
                },
            },
        },
        separators=(",", ":"),
    ).encode()

    result = apply_patch(deployment(), body, SMP, "Deployment")

    expected = deployment()
    expected["metadata"]["annotations"][LAST_APPLIED] = new_last_applied
    expected["spec"]["replicas"] = 3
    pod_spec(expected)["containers"][0]["image"] = "python:3.12"
    assert result == expected


def test_client_side_apply_removing_an_env_var_deletes_only_that_one() -> None:
    body = (
        b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],'
        b'"containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"$patch":"delete","name":"B"}],'
        b'"name":"web"}]}}}}'
    )

    result = apply_patch(deployment(), body, SMP, "Deployment")

    expected = deployment()
    pod_spec(expected)["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    assert result == expected


def test_client_side_apply_switching_to_recreate_clears_rolling_update_with_retain_keys() -> None:
    live = deployment(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}
    )
    body = b'{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}}'

    result = apply_patch(live, body, SMP, "Deployment")

    assert result == deployment(strategy={"type": "Recreate"})


def test_retain_keys_also_clears_fields_the_patch_does_not_mention() -> None:
    # The server defaulted rollingUpdate; the user's manifest never had it, so the patch
    # cannot null it: $retainKeys is what removes it.
    body = b'{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}'

    assert apply_patch(deployment(), body, SMP, "Deployment") == deployment(strategy={"type": "Recreate"})


def test_set_image_changes_only_the_image() -> None:
    body = (
        b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],'
        b'"containers":[{"image":"nginx:1.25","name":"web"}]}}}}'
    )

    result = apply_patch(deployment(), body, SMP, "Deployment")

    expected = deployment()
    pod_spec(expected)["containers"][0]["image"] = "nginx:1.25"
    assert result == expected


def test_set_element_order_keeps_a_server_only_container_in_its_place() -> None:
    live = deployment()
    sidecar = {"name": "proxy", "image": "envoy:1.30"}
    pod_spec(live)["containers"].append(sidecar)
    body = (
        b'{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],'
        b'"containers":[{"image":"nginx:1.25","name":"web"}]}}}}'
    )

    result = apply_patch(live, body, SMP, "Deployment")

    expected = copy.deepcopy(live)
    pod_spec(expected)["containers"][0]["image"] = "nginx:1.25"
    assert result == expected


def test_set_element_order_puts_a_new_container_where_the_manifest_has_it() -> None:
    body = json.dumps(
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "init-db"}, {"name": "web"}],
                        "containers": [{"image": "postgres:16", "name": "init-db"}],
                    }
                }
            }
        }
    ).encode()

    result = apply_patch(deployment(), body, SMP, "Deployment")

    expected = deployment()
    pod_spec(expected)["containers"].insert(0, {"image": "postgres:16", "name": "init-db"})
    assert result == expected


def test_rollout_restart_adds_the_restarted_at_annotation_to_the_template() -> None:
    body = (
        b'{"spec":{"template":{"metadata":{"annotations":'
        b'{"kubectl.kubernetes.io/restartedAt":"2026-11-25T08:09:51Z"}}}}}'
    )

    result = apply_patch(deployment(), body, SMP, "Deployment")

    expected = deployment()
    expected["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2026-11-25T08:09:51Z"
    }
    assert result == expected


def test_cordon_marks_the_node_unschedulable() -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
        "spec": {"podCIDRs": ["10.244.1.0/24"]},
    }

    result = apply_patch(node, b'{"spec":{"unschedulable":true}}', SMP, "Node")

    assert result == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
        "spec": {"podCIDRs": ["10.244.1.0/24"], "unschedulable": True},
    }


def test_python_client_dict_patch_merges_into_the_object() -> None:
    # patch_namespaced_deployment(name, ns, {"spec": {"replicas": 4}}) sends this as SMP.
    result = apply_patch(
        deployment(), b'{"spec": {"replicas": 4}}', "application/strategic-merge-patch+json", "Deployment"
    )

    expected = deployment()
    expected["spec"]["replicas"] = 4
    assert result == expected


# --- strategic merge patch: directives ----------------------------------------------------------


def test_null_deletes_a_key_and_nested_nulls_in_new_maps_are_dropped() -> None:
    patch = {
        "metadata": {"labels": {"app": None}},
        "spec": {
            "template": {"spec": {"securityContext": None, "nodeSelector": {"disk": "ssd", "zone": None}}}
        },
    }

    result = strategic_merge(deployment(), patch, "Deployment")

    expected = deployment()
    expected["metadata"]["labels"] = {}
    del pod_spec(expected)["securityContext"]
    pod_spec(expected)["nodeSelector"] = {"disk": "ssd"}
    assert result == expected


def test_patch_replace_on_a_map_replaces_it_whole() -> None:
    live = deployment()
    pod_spec(live)["nodeSelector"] = {"disk": "hdd", "zone": "a"}
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"$patch": "replace", "disk": "ssd"}}}}}

    result = strategic_merge(live, patch, "Deployment")

    expected = copy.deepcopy(live)
    pod_spec(expected)["nodeSelector"] = {"disk": "ssd"}
    assert result == expected


def test_patch_delete_on_a_map_empties_it_and_on_a_missing_map_adds_nothing() -> None:
    live = deployment()
    pod_spec(live)["nodeSelector"] = {"disk": "hdd"}
    patch = {
        "spec": {
            "template": {"spec": {"nodeSelector": {"$patch": "delete"}, "affinity": {"$patch": "delete"}}}
        }
    }

    result = strategic_merge(live, patch, "Deployment")

    expected = copy.deepcopy(live)
    pod_spec(expected)["nodeSelector"] = {}
    assert result == expected


def test_patch_merge_on_a_map_is_the_default_merge() -> None:
    patch = {"metadata": {"labels": {"$patch": "merge", "tier": "frontend"}}}

    result = strategic_merge(deployment(), patch, "Deployment")

    expected = deployment()
    expected["metadata"]["labels"] = {"app": "web", "tier": "frontend"}
    assert result == expected


def test_patch_replace_element_replaces_the_whole_merging_list() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "env": [{"$patch": "replace"}, {"name": "ONLY", "value": "x"}]}
                    ]
                }
            }
        }
    }

    result = strategic_merge(deployment(), patch, "Deployment")

    expected = deployment()
    pod_spec(expected)["containers"][0]["env"] = [{"name": "ONLY", "value": "x"}]
    assert result == expected


def test_new_element_without_set_element_order_goes_first_as_upstream_orders_it() -> None:
    # k8s.io/apimachinery mergeSortedSlice: patch elements the live list does not have come
    # before the server's elements when no $setElementOrder says otherwise.
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "web", "env": [{"name": "C", "value": "3"}]}]}}
        }
    }

    result = strategic_merge(deployment(), patch, "Deployment")

    expected = deployment()
    pod_spec(expected)["containers"][0]["env"] = [
        {"name": "C", "value": "3"},
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
    ]
    assert result == expected


def test_patch_order_of_existing_elements_wins_over_live_order() -> None:
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B"}, {"name": "A"}]}]}}
        }
    }

    result = strategic_merge(deployment(), patch, "Deployment")

    expected = deployment()
    pod_spec(expected)["containers"][0]["env"] = [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    assert result == expected


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list_removes_them() -> None:
    live = {"metadata": {"name": "cm", "finalizers": ["a.example/one", "b.example/two"]}, "data": {"k": "v"}}

    added = strategic_merge(
        live, {"metadata": {"finalizers": ["b.example/two", "c.example/three"]}}, "ConfigMap"
    )
    removed = strategic_merge(
        live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/one"]}}, "ConfigMap"
    )

    assert added == {
        "metadata": {"name": "cm", "finalizers": ["a.example/one", "b.example/two", "c.example/three"]},
        "data": {"k": "v"},
    }
    assert removed == {"metadata": {"name": "cm", "finalizers": ["b.example/two"]}, "data": {"k": "v"}}


def test_set_element_order_and_delete_on_a_primitive_list_together() -> None:
    # kubectl's patch for finalizers [x, y, z] (live also has w) -> manifest [x, y, new].
    live = {"metadata": {"name": "cm", "finalizers": ["x", "y", "z", "w"]}}
    patch = {
        "metadata": {
            "$setElementOrder/finalizers": ["x", "y", "new"],
            "$deleteFromPrimitiveList/finalizers": ["z"],
            "finalizers": ["new"],
        }
    }

    assert strategic_merge(live, patch, "ConfigMap") == {
        "metadata": {"name": "cm", "finalizers": ["x", "y", "new", "w"]}
    }


# --- strategic merge patch: which lists merge, per kind -----------------------------------------


@pytest.mark.parametrize(
    ("kind", "original", "patch", "expected"),
    [
        pytest.param(
            "Service",
            {"spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}},
            {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}},
            {
                "spec": {
                    "ports": [
                        {"name": "http", "port": 80},
                        {"name": "https", "port": 443, "targetPort": 8443},
                    ]
                }
            },
            id="service ports by port",
        ),
        pytest.param(
            "Pod",
            {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}},
            {"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "name": "http"}]}]}},
            {
                "spec": {
                    "containers": [
                        {"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}
                    ]
                }
            },
            id="container ports by containerPort",
        ),
        pytest.param(
            "Pod",
            {
                "spec": {
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "initContainers": [
                        {"name": "init", "volumeMounts": [{"mountPath": "/data", "name": "data"}]}
                    ],
                }
            },
            {
                "spec": {
                    "volumes": [{"name": "cache", "emptyDir": {}}],
                    "initContainers": [
                        {"name": "init", "volumeMounts": [{"mountPath": "/data", "readOnly": True}]}
                    ],
                }
            },
            {
                "spec": {
                    "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "data", "emptyDir": {}}],
                    "initContainers": [
                        {
                            "name": "init",
                            "volumeMounts": [{"mountPath": "/data", "name": "data", "readOnly": True}],
                        }
                    ],
                }
            },
            id="volumes by name, volumeMounts by mountPath",
        ),
        pytest.param(
            "Pod",
            {
                "status": {
                    "conditions": [
                        {"type": "Ready", "status": "False"},
                        {"type": "PodScheduled", "status": "True"},
                    ]
                }
            },
            {"status": {"conditions": [{"type": "Ready", "status": "True"}], "podIPs": [{"ip": "10.0.0.5"}]}},
            {
                "status": {
                    "conditions": [
                        {"type": "Ready", "status": "True"},
                        {"type": "PodScheduled", "status": "True"},
                    ],
                    "podIPs": [{"ip": "10.0.0.5"}],
                }
            },
            id="pod conditions by type",
        ),
        pytest.param(
            "Node",
            {
                "status": {
                    "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                }
            },
            {
                "status": {
                    "addresses": [{"type": "Hostname", "address": "n1"}],
                    "conditions": [{"type": "MemoryPressure", "status": "False"}],
                }
            },
            {
                "status": {
                    "addresses": [
                        {"type": "Hostname", "address": "n1"},
                        {"type": "InternalIP", "address": "10.0.0.1"},
                    ],
                    "conditions": [
                        {"type": "MemoryPressure", "status": "False"},
                        {"type": "Ready", "status": "True"},
                    ],
                }
            },
            id="node addresses and conditions by type",
        ),
        pytest.param(
            "ReplicaSet",
            {"metadata": {"ownerReferences": [{"uid": "d-1", "kind": "Deployment", "name": "web"}]}},
            {"metadata": {"ownerReferences": [{"uid": "d-1", "controller": True}]}},
            {
                "metadata": {
                    "ownerReferences": [
                        {"uid": "d-1", "kind": "Deployment", "name": "web", "controller": True}
                    ]
                }
            },
            id="ownerReferences by uid",
        ),
        pytest.param(
            "Namespace",
            {"status": {"conditions": [{"type": "NamespaceDeletionDiscoveryFailure", "status": "False"}]}},
            {"status": {"conditions": [{"type": "NamespaceContentRemaining", "status": "True"}]}},
            {
                "status": {
                    "conditions": [
                        {"type": "NamespaceContentRemaining", "status": "True"},
                        {"type": "NamespaceDeletionDiscoveryFailure", "status": "False"},
                    ]
                }
            },
            id="namespace conditions by type",
        ),
        pytest.param(
            "ServiceAccount",
            {"secrets": [{"name": "token-a"}]},
            {"secrets": [{"name": "token-b"}]},
            {"secrets": [{"name": "token-b"}, {"name": "token-a"}]},
            id="service account secrets by name",
        ),
    ],
)
def test_lists_with_a_merge_key_merge_element_by_element(
    kind: str, original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert strategic_merge(original, patch, kind) == expected


@pytest.mark.parametrize(
    ("kind", "original", "patch"),
    [
        pytest.param(
            "Pod",
            {"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}},
            {"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}},
            id="pod tolerations",
        ),
        pytest.param(
            "Pod",
            {"spec": {"containers": [{"name": "web", "args": ["--a"], "command": ["python"]}]}},
            {"spec": {"containers": [{"name": "web", "args": ["--b"], "command": ["python3"]}]}},
            id="container args and command",
        ),
        pytest.param(
            "Node",
            {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}},
            {"spec": {"taints": [{"key": "b", "effect": "NoSchedule"}]}},
            id="node taints",
        ),
        pytest.param(
            "Namespace",
            {"spec": {"finalizers": ["kubernetes"]}},
            {"spec": {"finalizers": ["other"]}},
            id="namespace spec.finalizers",
        ),
        pytest.param(
            "Endpoints",
            {"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]},
            {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]},
            id="endpoints subsets",
        ),
    ],
)
def test_lists_without_a_merge_strategy_are_replaced(
    kind: str, original: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert strategic_merge(original, patch, kind) == patch


def test_merge_lists_of_the_pod_template_also_apply_to_replica_sets() -> None:
    original = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}
        }
    }
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "z"}]}}}}

    assert strategic_merge(original, patch, "ReplicaSet") == {
        "spec": {
            "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}]}}
        }
    }


def test_strategic_merge_never_changes_its_inputs() -> None:
    live = deployment()
    patch = {
        "metadata": {"labels": {"app": None}},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "web", "env": [{"name": "A", "$patch": "delete"}]}]}
            }
        },
    }
    live_before, patch_before = copy.deepcopy(live), copy.deepcopy(patch)

    result = strategic_merge(live, patch, "Deployment")
    pod_spec(result)["containers"][0]["image"] = "changed"

    assert live == live_before
    assert patch == patch_before


# --- strategic merge patch: errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        pytest.param(
            {"spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}},
            'spec.template.spec.containers[0]: does not contain declared merge key "name"',
            id="missing merge key",
        ),
        pytest.param(
            {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "web", "env": [{"$patch": "delete"}]}]}}
                }
            },
            'spec.template.spec.containers[name=web].env[0]: does not contain declared merge key "name"',
            id="delete without merge key",
        ),
        pytest.param(
            {"spec": {"strategy": {"$patch": "squash"}}},
            'spec.strategy: unknown $patch directive "squash" (expected replace, delete or merge)',
            id="unknown $patch on a map",
        ),
        pytest.param(
            {"spec": {"template": {"spec": {"volumes": [{"name": "v", "$patch": "drop"}]}}}},
            'spec.template.spec.volumes[0]: unknown $patch directive "drop" '
            "(expected replace, delete or merge)",
            id="unknown $patch in a list",
        ),
        pytest.param(
            {"spec": {"$replace": True}}, 'spec: unknown directive "$replace"', id="unknown directive"
        ),
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {}}}},
            "spec.strategy: field \"rollingUpdate\" is in the patch but not in $retainKeys ['type']",
            id="field missing from $retainKeys",
        ),
        pytest.param(
            {"spec": {"strategy": {"$retainKeys": "type"}}},
            "spec.strategy.$retainKeys: must be a list of field names",
            id="$retainKeys not a list",
        ),
        pytest.param(
            {
                "spec": {
                    "template": {
                        "spec": {
                            "$setElementOrder/containers": [{"name": "a"}, {"name": "web"}],
                            "containers": [{"name": "web"}, {"name": "a"}],
                        }
                    }
                }
            },
            "spec.template.spec.containers: the order of the patch list does not match $setElementOrder",
            id="patch list out of $setElementOrder order",
        ),
        pytest.param(
            {"spec": {"template": {"spec": {"$setElementOrder/tolerations": [{"key": "a"}]}}}},
            "spec.template.spec.tolerations: $setElementOrder applies only to lists that merge, "
            "and spec.template.spec.tolerations does not",
            id="$setElementOrder on a replaced list",
        ),
        pytest.param(
            {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"image": "x"}]}}}},
            'spec.template.spec.$setElementOrder/containers[0]: does not contain declared merge key "name"',
            id="$setElementOrder element without merge key",
        ),
        pytest.param(
            {"spec": {"template": {"spec": {"$deleteFromPrimitiveList/containers": ["web"]}}}},
            "spec.template.spec.containers: $deleteFromPrimitiveList applies only to merging lists "
            "of strings such as metadata.finalizers",
            id="$deleteFromPrimitiveList on a list of maps",
        ),
        pytest.param(
            {"spec": {"template": {"spec": {"tolerations": [{"key": "a", "$patch": "delete"}]}}}},
            "spec.template.spec.tolerations[0]: $patch: delete needs a list with a merge key, "
            "and spec.template.spec.tolerations has none",
            id="$patch delete in a replaced list",
        ),
    ],
)
def test_bad_strategic_merge_patches_name_the_field(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchError) as caught:
        strategic_merge(deployment(), patch, "Deployment")

    assert str(caught.value) == message
    assert caught.value.code == 400


def test_strategic_merge_patch_must_be_an_object() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(deployment(), b'[{"op":"add"}]', SMP, "Deployment")

    assert (str(caught.value), caught.value.code) == (
        "a strategic merge patch must be a JSON object, not array",
        400,
    )


# --- JSON merge patch (RFC 7386) ----------------------------------------------------------------


def test_merge_patch_follows_the_rfc_7386_example() -> None:
    original = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }

    assert merge_patch(original, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_kubectl_label_and_annotate_send_merge_patches() -> None:
    labelled = apply_patch(deployment(), b'{"metadata":{"labels":{"tier":"frontend"}}}', MERGE, "Deployment")
    unlabelled = apply_patch(labelled, b'{"metadata":{"labels":{"app":null}}}', MERGE, "Deployment")
    annotated = apply_patch(unlabelled, b'{"metadata":{"annotations":{"note":"hi"}}}', MERGE, "Deployment")

    expected = deployment()
    expected["metadata"]["labels"] = {"tier": "frontend"}
    expected["metadata"]["annotations"]["note"] = "hi"
    assert annotated == expected


def test_kubectl_scale_merge_patch_on_the_scale_subresource() -> None:
    scale = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "10"},
        "spec": {"replicas": 2},
        "status": {"replicas": 2, "selector": "app=web"},
    }

    result = apply_patch(scale, b'{"spec":{"replicas":5}}', MERGE, "Scale")

    assert result == {**scale, "spec": {"replicas": 5}}


def test_merge_patch_replaces_lists_whole_and_builds_missing_maps() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "web", "image": "nginx"}],
                    "nodeSelector": {"disk": "ssd", "x": None},
                }
            }
        }
    }

    result = merge_patch(deployment(), patch)

    expected = deployment()
    pod_spec(expected)["containers"] = [{"name": "web", "image": "nginx"}]
    pod_spec(expected)["nodeSelector"] = {"disk": "ssd"}
    assert result == expected


def test_merge_patch_never_changes_its_inputs() -> None:
    live, patch = deployment(), {"spec": {"selector": {"matchLabels": {"extra": "1"}}}}

    result = merge_patch(live, patch)
    result["spec"]["selector"]["matchLabels"]["extra"] = "changed"

    assert live == deployment()
    assert patch == {"spec": {"selector": {"matchLabels": {"extra": "1"}}}}


@pytest.mark.parametrize(("body", "kind"), [(b"[]", "array"), (b'"text"', "string"), (b"null", "null")])
def test_merge_patch_must_be_an_object(body: bytes, kind: str) -> None:
    with pytest.raises(PatchError, match=f"^a merge patch must be a JSON object, not {kind}$"):
        apply_patch(deployment(), body, MERGE, "Deployment")


# --- JSON patch (RFC 6902) ----------------------------------------------------------------------


def test_json_patch_applies_operations_in_order() -> None:
    operations = [
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/metadata/labels/tier", "value": "frontend"},
        {"op": "remove", "path": "/spec/template/spec/containers/0/env/1"},
        {"op": "test", "path": "/spec/template/spec/containers/0/env/0/name", "value": "A"},
        {"op": "copy", "from": "/metadata/labels", "path": "/spec/template/metadata/labels"},
    ]

    result = apply_patch(deployment(), json.dumps(operations).encode(), JSON_PATCH, "Deployment")

    expected = deployment()
    expected["spec"]["replicas"] = 2
    expected["metadata"]["labels"]["tier"] = "frontend"
    pod_spec(expected)["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    expected["spec"]["template"]["metadata"]["labels"] = {"app": "web", "tier": "frontend"}
    assert result == expected


@pytest.mark.parametrize(
    ("operations", "message", "code"),
    [
        pytest.param(
            [{"op": "test", "path": "/spec/replicas", "value": 3}],
            "json patch operation 0 (test /spec/replicas): test failed: the value is 1, expected 3",
            422,
            id="test fails",
        ),
        pytest.param(
            [
                {"op": "replace", "path": "/spec/replicas", "value": 2},
                {"op": "test", "path": "/spec/paused", "value": True},
            ],
            "json patch operation 1 (test /spec/paused): test failed: nothing is there, expected true",
            422,
            id="test of a missing field",
        ),
        pytest.param(
            [{"op": "remove", "path": "/spec/paused"}],
            "json patch operation 0 (remove /spec/paused): can't remove a non-existent object 'paused'",
            422,
            id="remove a missing field",
        ),
        pytest.param(
            [{"op": "replace", "path": "", "value": [1]}],
            "the patched object must be a JSON object, not array",
            422,
            id="result not an object",
        ),
        pytest.param(
            [{"op": "jump", "path": "/spec"}],
            "json patch operation 0 (jump /spec): Unknown operation 'jump'",
            400,
            id="unknown op",
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/paused"}],
            "json patch operation 0 (add /spec/paused): The operation does not contain a 'value' member",
            400,
            id="add without value",
        ),
        pytest.param(
            ["remove"],
            "json patch operation 0: must be an object, not string",
            400,
            id="operation not an object",
        ),
        pytest.param(
            {"op": "add", "path": "/a", "value": 1},
            "a json patch must be a JSON array of operations, not object",
            400,
            id="not an array",
        ),
        pytest.param(
            [{"op": "test", "path": "/metadata/name", "value": "web"}] * 10001,
            "The allowed maximum operations in a JSON patch is 10000, got 10001",
            413,
            id="too many operations",
        ),
    ],
)
def test_bad_json_patches(operations: Any, message: str, code: int) -> None:
    live = deployment()

    with pytest.raises(PatchError) as caught:
        json_patch(live, operations)

    assert (str(caught.value), caught.value.code) == (message, code)
    assert live == deployment()


# --- Content-Type dispatch and bodies -----------------------------------------------------------


ADD_ENV_C = (
    b'{"spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"web","env":[{"name":"C"}]}]}}}}'
)


@pytest.mark.parametrize(
    ("content_type", "body", "env"),
    [
        pytest.param(
            "application/strategic-merge-patch+json; charset=utf-8",
            ADD_ENV_C,
            [{"name": "C"}, {"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            id="strategic merge: env merges by name",
        ),
        pytest.param(
            "Application/Merge-Patch+JSON", ADD_ENV_C, [{"name": "C"}], id="merge patch: env is replaced"
        ),
        pytest.param(
            "application/json-patch+json",
            b'[{"op":"replace","path":"/spec/replicas","value":2}]',
            [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            id="json patch: only the named path",
        ),
    ],
)
def test_apply_patch_dispatches_on_content_type(
    content_type: str, body: bytes, env: list[dict[str, str]]
) -> None:
    result = apply_patch(deployment(), body, content_type, "Deployment")

    expected = deployment()
    expected["spec"]["replicas"] = 2
    if content_type.lower().startswith("application/merge-patch"):
        pod_spec(expected)["containers"] = [{"name": "web", "env": env}]
    else:
        pod_spec(expected)["containers"][0]["env"] = env
    assert result == expected


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/apply-patch+yaml", "text/plain", ""]
)
def test_apply_patch_rejects_other_content_types_with_415(content_type: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(deployment(), b"{}", content_type, "Deployment")

    assert caught.value.code == 415
    assert str(caught.value) == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"",
            "the application/merge-patch+json body is not valid JSON: "
            "Expecting value: line 1 column 1 (char 0)",
        ),
        (
            b'{"spec": {"replicas": 2,}}',
            "the application/merge-patch+json body is not valid JSON: "
            "Expecting property name enclosed in double quotes: line 1 column 25 (char 24)",
        ),
        (
            b'{"spec": {"replicas": NaN}}',
            "the application/merge-patch+json body is not valid JSON: NaN is not valid JSON",
        ),
        (
            b'{"a": "\xff"}',
            "the application/merge-patch+json body is not valid JSON: 'utf-8' codec can't decode byte 0xff "
            "in position 7: invalid start byte",
        ),
    ],
)
def test_apply_patch_rejects_a_body_that_is_not_json(body: bytes, message: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(deployment(), body, MERGE, "Deployment")

    assert (str(caught.value), caught.value.code) == (message, 400)
