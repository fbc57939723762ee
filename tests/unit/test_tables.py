"""Table responses: the exact cells ``kubectl get`` (and ``-o wide``) prints for realistic objects."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.apiserver.tables import to_table
from labkit.embedded.resources import ResourceType, lookup
from labkit.shared import timeutil

NOW = datetime(2026, 11, 25, 8, 0, 0, tzinfo=timezone.utc)


def ago(**delta: float) -> str:
    """An RFC 3339 timestamp ``delta`` before NOW."""
    return timeutil.rfc3339(NOW - timedelta(**delta))


def rt_of(plural: str) -> ResourceType:
    for group in ("", "apps", "discovery.k8s.io", "coordination.k8s.io"):
        rt = lookup(group, "v1", plural)
        if rt is not None:
            return rt
    raise AssertionError(plural)


def table(plural: str, *objects: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return to_table(rt_of(plural), list(objects), resource_version="42", now=NOW, **kwargs)


def row(plural: str, obj: dict[str, Any]) -> list[Any]:
    """Cells of one object, all columns (wide ones included)."""
    return table(plural, obj)["rows"][0]["cells"]


def narrow(plural: str, obj: dict[str, Any]) -> list[Any]:
    """Cells kubectl shows without ``-o wide``."""
    t = table(plural, obj)
    return [
        c for c, d in zip(t["rows"][0]["cells"], t["columnDefinitions"], strict=True) if d["priority"] == 0
    ]


# --- timeutil -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        (-1.5, "0s"),
        (0, "0s"),
        (45, "45s"),
        (119.9, "119s"),
        (120, "2m"),
        (310, "5m10s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60 + 59, "3h5m"),
        (8 * 3600 - 60, "7h59m"),
        (8 * 3600, "8h"),
        (48 * 3600 - 1, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (8 * 86400 - 3600, "7d23h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (751 * 86400, "2y21d"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400, "20y"),
    ],
)
def test_human_duration_matches_apimachinery(seconds: float, text: str) -> None:
    assert timeutil.human_duration(seconds) == text


def test_timestamps_round_trip_at_second_precision() -> None:
    assert (
        timeutil.rfc3339(datetime(2026, 11, 25, 8, 1, 17, 999999, tzinfo=timezone.utc))
        == "2026-11-25T08:01:17Z"
    )
    assert timeutil.rfc3339(datetime(2026, 11, 25, 9, 1, 17, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-11-25T08:01:17Z"
    )
    assert timeutil.parse_rfc3339("2026-11-25T08:01:17Z") == datetime(
        2026, 11, 25, 8, 1, 17, tzinfo=timezone.utc
    )
    assert timeutil.parse_rfc3339("2026-11-25T08:01:17.123456789Z").microsecond == 123456
    assert timeutil.parse_rfc3339("2026-11-25T10:01:17+02:00") == timeutil.parse_rfc3339(
        "2026-11-25T08:01:17Z"
    )
    assert timeutil.now().tzinfo is not None
    assert timeutil.rfc3339().endswith("Z")


@pytest.mark.parametrize("bad", ["yesterday", "2026-11-25", "2026-11-25T08:01:17", "2026-13-01T00:00:00Z"])
def test_parse_rfc3339_rejects_other_text(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid RFC 3339 timestamp"):
        timeutil.parse_rfc3339(bad)


def test_age_of_missing_or_unreadable_timestamps_is_unknown() -> None:
    assert timeutil.age(None, NOW) == "<unknown>"
    assert timeutil.age("", NOW) == "<unknown>"
    assert timeutil.age("soon", NOW) == "<unknown>"
    assert timeutil.age(ago(minutes=5, seconds=10), NOW) == "5m10s"


# --- table envelope --------------------------------------------------------------------------------


def pod(name: str = "web-1", **parts: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": "default", "uid": "u-" + name, "creationTimestamp": ago(minutes=5)}
    meta.update(parts.pop("metadata", {}))
    spec = {"containers": [{"name": "web", "image": "nginx:1.27"}], "nodeName": "node-1"}
    spec.update(parts.pop("spec", {}))
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": spec,
        "status": parts.pop("status", {}),
    }


def running(name: str = "web", restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(minutes=4)}},
        **extra,
    }


RUNNING_POD = pod(
    status={
        "phase": "Running",
        "podIP": "10.244.0.5",
        "podIPs": [{"ip": "10.244.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [running()],
    }
)


def test_table_envelope_and_pod_columns() -> None:
    t = table("pods", RUNNING_POD)
    assert t["kind"] == "Table"
    assert t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42"}
    names = [(c["name"], c["type"], c["priority"]) for c in t["columnDefinitions"]]
    assert names == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Status", "string", 0),
        ("Restarts", "string", 0),
        ("Age", "string", 0),
        ("IP", "string", 1),
        ("Node", "string", 1),
        ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1),
    ]
    assert t["columnDefinitions"][0]["format"] == "name"
    assert all(isinstance(c["description"], str) and c["description"] for c in t["columnDefinitions"])
    assert t["rows"][0]["cells"] == [
        "web-1",
        "1/1",
        "Running",
        "0",
        "5m",
        "10.244.0.5",
        "node-1",
        "<none>",
        "<none>",
    ]


def test_row_object_is_partial_metadata_by_default() -> None:
    obj = table("pods", RUNNING_POD)["rows"][0]["object"]
    assert obj == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": RUNNING_POD["metadata"],
    }
    assert table("pods", RUNNING_POD, include_object="")["rows"][0]["object"] == obj


def test_row_object_full_or_none_on_request() -> None:
    assert table("pods", RUNNING_POD, include_object="Object")["rows"][0]["object"] == RUNNING_POD
    bare = {k: v for k, v in RUNNING_POD.items() if k not in ("kind", "apiVersion")}
    full = table("pods", bare, include_object="Object")["rows"][0]["object"]
    assert (full["kind"], full["apiVersion"]) == ("Pod", "v1")
    assert table("pods", RUNNING_POD, include_object="None")["rows"][0]["object"] is None


def test_unknown_include_object_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as err:
        table("pods", RUNNING_POD, include_object="Everything")
    assert err.value.code == 400
    assert 'unrecognized includeObject value: "Everything"' in err.value.message


def test_watch_tables_after_the_first_carry_no_column_definitions() -> None:
    t = table("pods", RUNNING_POD, column_definitions=False)
    assert t["columnDefinitions"] == []
    assert len(t["rows"][0]["cells"]) == 9


def test_empty_list_still_has_columns() -> None:
    t = table("services")
    assert t["rows"] == []
    assert [c["name"] for c in t["columnDefinitions"]][:2] == ["Name", "Type"]


def test_unknown_kinds_fall_back_to_name_and_age() -> None:
    jobs = ResourceType("batch", "v1", "Job", "jobs", True)
    job = {"metadata": {"name": "backup", "creationTimestamp": ago(hours=3)}}
    t = to_table(jobs, [job], resource_version="7", now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["cells"] == ["backup", "3h"]


def test_now_defaults_to_the_current_time() -> None:
    fresh = {"metadata": {"name": "x", "creationTimestamp": timeutil.rfc3339()}}
    cells = to_table(rt_of("configmaps"), [fresh], resource_version="1")["rows"][0]["cells"]
    assert cells[2] in ("0s", "1s")


# --- pods: the STATUS / READY / RESTARTS columns ---------------------------------------------------


def test_crash_looping_pod_shows_backoff_and_last_restart() -> None:
    crashing = pod(
        status={
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": False,
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                    "lastState": {
                        "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(seconds=30)}
                    },
                }
            ],
        }
    )
    assert narrow("pods", crashing) == ["web-1", "0/1", "CrashLoopBackOff", "4 (30s ago)", "5m"]


def test_restarts_take_the_latest_termination_of_all_containers() -> None:
    two = pod(
        spec={"containers": [{"name": "a"}, {"name": "b"}]},
        status={
            "phase": "Running",
            "containerStatuses": [
                running("a", 1, lastState={"terminated": {"exitCode": 1, "finishedAt": ago(minutes=3)}}),
                running("b", 2, lastState={"terminated": {"exitCode": 1, "finishedAt": ago(seconds=70)}}),
            ],
        },
    )
    assert narrow("pods", two)[1:4] == ["2/2", "Running", "3 (70s ago)"]


def test_restarts_without_a_known_time_are_just_a_number() -> None:
    p = pod(status={"phase": "Running", "containerStatuses": [running(restarts=2)]})
    assert narrow("pods", p)[3] == "2"


def test_terminating_pod() -> None:
    deleting = pod(metadata={"deletionTimestamp": ago(seconds=3)}, status=RUNNING_POD["status"])
    assert narrow("pods", deleting)[1:3] == ["1/1", "Terminating"]


def test_deleted_pod_on_lost_node_is_unknown() -> None:
    lost = pod(
        metadata={"deletionTimestamp": ago(seconds=3)}, status={"phase": "Running", "reason": "NodeLost"}
    )
    assert narrow("pods", lost)[2] == "Unknown"


def test_completed_pod_is_marked_completed_and_not_terminating() -> None:
    done = pod(
        metadata={"deletionTimestamp": ago(seconds=1)},
        status={
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(minutes=1)}
                    },
                }
            ],
        },
    )
    t = table("pods", done)
    assert t["rows"][0]["cells"][:4] == ["web-1", "0/1", "Completed", "0"]
    assert t["rows"][0]["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    failed = pod(status={"phase": "Failed"})
    assert table("pods", failed)["rows"][0]["conditions"][0]["reason"] == "Failed"
    assert "conditions" not in table("pods", RUNNING_POD)["rows"][0]


@pytest.mark.parametrize(
    ("terminated", "status"),
    [
        ({"exitCode": 137, "reason": "OOMKilled"}, "OOMKilled"),
        ({"exitCode": 137, "signal": 9}, "Signal:9"),
        ({"exitCode": 2}, "ExitCode:2"),
    ],
)
def test_terminated_container_reason_signal_or_exit_code(terminated: dict, status: str) -> None:
    p = pod(
        status={
            "phase": "Failed",
            "containerStatuses": [{"name": "web", "state": {"terminated": terminated}}],
        }
    )
    assert narrow("pods", p)[2] == status


@pytest.mark.parametrize(
    ("phase", "statuses", "status"),
    [
        ("Pending", [], "Pending"),
        (
            "Pending",
            [{"name": "web", "state": {"waiting": {"reason": "ContainerCreating"}}}],
            "ContainerCreating",
        ),
        ("Pending", [{"name": "web", "state": {"waiting": {"reason": "ErrImagePull"}}}], "ErrImagePull"),
        ("Running", [{"name": "web", "state": {"running": {}}, "ready": False}], "Running"),
    ],
)
def test_pod_status_from_phase_and_waiting_reason(phase: str, statuses: list, status: str) -> None:
    p = pod(spec={"nodeName": None}, status={"phase": phase, "containerStatuses": statuses})
    cells = row("pods", p)
    assert cells[1:4] == ["0/1", status, "0"]
    assert cells[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_completed_container_next_to_a_running_one_shows_running_or_not_ready() -> None:
    statuses = [
        running("server"),
        {"name": "job", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
    ]
    spec = {"containers": [{"name": "server"}, {"name": "job"}]}
    ready = pod(
        spec=spec,
        status={
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": statuses,
        },
    )
    assert narrow("pods", ready)[1:3] == ["1/2", "Running"]
    unready = pod(spec=spec, status={"phase": "Running", "containerStatuses": statuses})
    assert narrow("pods", unready)[1:3] == ["1/2", "NotReady"]


INIT_SPEC = {"initContainers": [{"name": "migrate"}, {"name": "warmup"}]}


@pytest.mark.parametrize(
    ("init_statuses", "status"),
    [
        (
            [
                {"name": "migrate", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "warmup", "state": {"running": {}}},
            ],
            "Init:1/2",
        ),
        ([{"name": "migrate", "state": {"waiting": {"reason": "PodInitializing"}}}], "Init:0/2"),
        (
            [{"name": "migrate", "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
            "Init:ImagePullBackOff",
        ),
        ([{"name": "migrate", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}], "Init:Error"),
        ([{"name": "migrate", "state": {"terminated": {"exitCode": 3}}}], "Init:ExitCode:3"),
        ([{"name": "migrate", "state": {"terminated": {"exitCode": 137, "signal": 9}}}], "Init:Signal:9"),
    ],
)
def test_init_containers(init_statuses: list, status: str) -> None:
    p = pod(
        spec=INIT_SPEC,
        status={
            "phase": "Pending",
            "initContainerStatuses": init_statuses,
            "containerStatuses": [{"name": "web", "state": {"waiting": {"reason": "PodInitializing"}}}],
        },
    )
    assert narrow("pods", p)[1:3] == ["0/1", status]


def test_failing_init_container_restarts_count_while_initializing() -> None:
    p = pod(
        spec=INIT_SPEC,
        status={
            "phase": "Pending",
            "initContainerStatuses": [
                {
                    "name": "migrate",
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(seconds=20)}},
                }
            ],
        },
    )
    assert narrow("pods", p)[2:4] == ["Init:CrashLoopBackOff", "3 (20s ago)"]


def test_sidecar_init_container_counts_as_a_container() -> None:
    p = pod(
        spec={"initContainers": [{"name": "proxy", "restartPolicy": "Always"}]},
        status={
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [running("proxy", 1, started=True)],
            "containerStatuses": [running()],
        },
    )
    assert narrow("pods", p)[1:4] == ["2/2", "Running", "1"]


def test_scheduling_gated_pod() -> None:
    p = pod(
        spec={"nodeName": None},
        status={"phase": "Pending", "conditions": [{"type": "PodScheduled", "reason": "SchedulingGated"}]},
    )
    assert narrow("pods", p)[2] == "SchedulingGated"


def test_wide_pod_columns_nominated_node_and_readiness_gates() -> None:
    p = pod(
        spec={"readinessGates": [{"conditionType": "lb/ready"}, {"conditionType": "mesh/ready"}]},
        status={
            "phase": "Running",
            "podIP": "10.244.1.7",
            "nominatedNodeName": "node-2",
            "conditions": [{"type": "lb/ready", "status": "True"}, {"type": "mesh/ready", "status": "False"}],
            "containerStatuses": [running()],
        },
    )
    assert row("pods", p)[5:] == ["10.244.1.7", "node-1", "node-2", "1/2"]


# --- workloads -------------------------------------------------------------------------------------

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]},
}


def test_deployment_row() -> None:
    deploy = {
        "metadata": {"name": "web", "creationTimestamp": ago(minutes=10)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    t = table("deployments", deploy)
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    assert t["rows"][0]["cells"] == ["web", "2/3", 3, 2, "10m", "web,log", "nginx:1.27,busybox", "app=web"]


def test_new_deployment_without_status() -> None:
    deploy = {
        "metadata": {"name": "web", "creationTimestamp": ago(seconds=2)},
        "spec": {"template": TEMPLATE},
    }
    assert row("deployments", deploy) == ["web", "0/1", 0, 0, "2s", "web,log", "nginx:1.27,busybox", ""]


def test_replicaset_row() -> None:
    rs = {
        "metadata": {"name": "web-7c5d8", "creationTimestamp": ago(hours=2, minutes=30)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7c5d8"}},
            "template": TEMPLATE,
        },
        "status": {"replicas": 3, "readyReplicas": 1},
    }
    t = table("replicasets", rs)
    assert [c["type"] for c in t["columnDefinitions"][1:4]] == ["integer"] * 3
    assert t["rows"][0]["cells"] == [
        "web-7c5d8",
        3,
        3,
        1,
        "150m",
        "web,log",
        "nginx:1.27,busybox",
        "app=web,pod-template-hash=7c5d8",
    ]
    empty = {"metadata": {"name": "old"}, "spec": {"replicas": 0, "template": {}}}
    assert row("replicasets", empty) == ["old", 0, 0, 0, "<unknown>", "", "", "<none>"]
    broken = {**empty, "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}}
    assert row("replicasets", broken)[-1] == "<invalid>"


# --- services ---------------------------------------------------------------------------------------


def service(kind: str | None, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": ports, "selector": {"app": "web", "tier": "fe"}, **spec}
    if kind:
        body["type"] = kind
    status = body.pop("status", {})
    return {"metadata": {"name": "web", "creationTimestamp": ago(days=3)}, "spec": body, "status": status}


HTTP = {"port": 80, "targetPort": 8080, "protocol": "TCP"}


@pytest.mark.parametrize(
    ("svc", "cells"),
    [
        (
            service("ClusterIP", [HTTP], clusterIP="10.96.0.10", clusterIPs=["10.96.0.10"]),
            ["ClusterIP", "10.96.0.10", "<none>", "80/TCP"],
        ),
        (
            service(None, [HTTP, {"port": 53, "protocol": "UDP"}], clusterIP="10.96.0.11"),
            ["ClusterIP", "10.96.0.11", "<none>", "80/TCP,53/UDP"],
        ),
        (
            service("ClusterIP", [HTTP], clusterIP="None", clusterIPs=["None"]),
            ["ClusterIP", "None", "<none>", "80/TCP"],
        ),
        (
            service("ClusterIP", [HTTP], clusterIP="10.96.0.12", externalIPs=["192.0.2.1", "192.0.2.2"]),
            ["ClusterIP", "10.96.0.12", "192.0.2.1,192.0.2.2", "80/TCP"],
        ),
        (
            service("NodePort", [{**HTTP, "nodePort": 30080}], clusterIP="10.96.0.13"),
            ["NodePort", "10.96.0.13", "<none>", "80:30080/TCP"],
        ),
        (
            service("LoadBalancer", [{**HTTP, "nodePort": 31000}], clusterIP="10.96.0.14"),
            ["LoadBalancer", "10.96.0.14", "<pending>", "80:31000/TCP"],
        ),
        (
            service(
                "LoadBalancer",
                [{**HTTP, "nodePort": 31000}],
                clusterIP="10.96.0.14",
                status={"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}},
            ),
            ["LoadBalancer", "10.96.0.14", "203.0.113.9,lb.example.com", "80:31000/TCP"],
        ),
        (
            service(
                "LoadBalancer",
                [HTTP],
                clusterIP="10.96.0.15",
                externalIPs=["192.0.2.7"],
                status={"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}},
            ),
            ["LoadBalancer", "10.96.0.15", "203.0.113.9,192.0.2.7", "80/TCP"],
        ),
        (
            service("ExternalName", [], externalName="db.example.com"),
            ["ExternalName", "<none>", "db.example.com", "<none>"],
        ),
    ],
)
def test_service_rows_for_each_type(svc: dict[str, Any], cells: list[str]) -> None:
    assert row("services", svc) == ["web", *cells, "3d", "app=web,tier=fe"]


def test_service_without_selector_shows_none() -> None:
    svc = service("ClusterIP", [HTTP], clusterIP="10.96.0.1")
    del svc["spec"]["selector"]
    assert row("services", svc)[-1] == "<none>"


# --- nodes, namespaces, events ----------------------------------------------------------------------


def node(name: str, labels: dict[str, str], ready: str | None, **spec: Any) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": ago(days=2, hours=3)},
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": "127.0.0.2"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0-lab",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "labkit://0.1.0",
            },
        },
    }


def test_cordoned_control_plane_node() -> None:
    cp = node("lab-control-plane", {"node-role.kubernetes.io/control-plane": ""}, "True", unschedulable=True)
    assert row("nodes", cp) == [
        "lab-control-plane",
        "Ready,SchedulingDisabled",
        "control-plane",
        "2d3h",
        "v1.32.0-lab",
        "127.0.0.2",
        "<none>",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-18-amd64",
        "labkit://0.1.0",
    ]


@pytest.mark.parametrize(
    ("labels", "ready", "status", "roles"),
    [
        ({"kubernetes.io/hostname": "w1"}, "False", "NotReady", "<none>"),
        ({}, "Unknown", "NotReady", "<none>"),
        ({}, None, "Unknown", "<none>"),
        (
            {
                "node-role.kubernetes.io/worker": "",
                "kubernetes.io/role": "gpu",
                "node-role.kubernetes.io/": "",
            },
            "True",
            "Ready",
            "gpu,worker",
        ),
    ],
)
def test_node_status_and_roles(labels: dict, ready: str | None, status: str, roles: str) -> None:
    assert row("nodes", node("w1", labels, ready))[1:3] == [status, roles]


def test_node_without_info_prints_unknown_wide_cells() -> None:
    bare = {"metadata": {"name": "n"}, "status": {}}
    assert (
        row("nodes", bare)
        == ["n", "Unknown", "<none>", "<unknown>", "", "<none>", "<none>"] + ["<unknown>"] * 3
    )


def test_namespace_row() -> None:
    ns = {"metadata": {"name": "default", "creationTimestamp": ago(days=3)}, "status": {"phase": "Active"}}
    assert row("namespaces", ns) == ["default", "Active", "3d"]
    assert [c["name"] for c in table("namespaces", ns)["columnDefinitions"]] == ["Name", "Status", "Age"]


BACKOFF = {
    "metadata": {"name": "web-1.17f0a", "namespace": "default"},
    "involvedObject": {
        "kind": "Pod",
        "name": "web-1",
        "namespace": "default",
        "fieldPath": "spec.containers{web}",
    },
    "type": "Warning",
    "reason": "BackOff",
    "message": "Back-off restarting failed container web in pod web-1_default(u-1)\n",
    "count": 3,
    "firstTimestamp": ago(minutes=10),
    "lastTimestamp": ago(seconds=77),
    "source": {"component": "kubelet", "host": "node-1"},
}


def test_event_columns_and_row() -> None:
    t = table("events", BACKOFF)
    assert [(c["name"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
    assert t["rows"][0]["cells"] == [
        "77s",
        "Warning",
        "BackOff",
        "pod/web-1",
        "spec.containers{web}",
        "kubelet, node-1",
        "Back-off restarting failed container web in pod web-1_default(u-1)",
        "10m",
        3,
        "web-1.17f0a",
    ]


def test_new_style_event_uses_event_time_and_reporting_fields() -> None:
    event = {
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Node"},
        "type": "Normal",
        "reason": "Starting",
        "message": "Starting kubelet.",
        "eventTime": "2026-11-25T07:56:59.500000Z",  # a MicroTime, 3m0.5s before NOW
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }
    assert row("events", event) == [
        "3m",
        "Normal",
        "Starting",
        "node",
        "",
        "kubelet, node-1",
        "Starting kubelet.",
        "3m",
        1,
        "e1",
    ]
    series = {
        **event,
        "series": {"count": 5, "lastObservedTime": ago(seconds=9)},
        "source": {"component": "x"},
    }
    cells = row("events", series)
    assert (cells[0], cells[5], cells[8]) == ("9s", "x, node-1", 5)
    assert row("events", {"metadata": {"name": "e0"}})[0] == "<unknown>"


# --- endpoints, slices, config, coordination ------------------------------------------------------


def test_endpoints_rows() -> None:
    def endpoints(*subsets: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"name": "web", "creationTimestamp": ago(minutes=1)}, "subsets": list(subsets)}

    addrs = [{"ip": f"10.244.0.{i}"} for i in range(1, 5)]
    assert row("endpoints", endpoints()) == ["web", "<none>", "60s"]
    two = endpoints({"addresses": addrs[:2], "ports": [{"port": 8080}]})
    assert row("endpoints", two)[1] == "10.244.0.1:8080,10.244.0.2:8080"
    four = endpoints({"addresses": addrs, "ports": [{"port": 8080}]})
    assert row("endpoints", four)[1] == "10.244.0.1:8080,10.244.0.2:8080,10.244.0.3:8080 + 1 more..."
    headless = endpoints({"addresses": addrs[:1]})
    assert row("endpoints", headless)[1] == "10.244.0.1"
    v6 = endpoints({"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]})
    assert row("endpoints", v6)[1] == "[fd00::1]:80"
    not_ready = endpoints({"notReadyAddresses": addrs[:1], "ports": [{"port": 80}]})
    assert row("endpoints", not_ready)[1] == ""


def test_endpointslice_rows() -> None:
    slice_ = {
        "metadata": {"name": "web-abc12", "creationTimestamp": ago(minutes=1)},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics"}, {}],
        "endpoints": [{"addresses": ["10.244.0.1"]}, {"addresses": ["10.244.0.2"]}],
    }
    t = table("endpointslices", slice_)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert t["rows"][0]["cells"] == ["web-abc12", "IPv4", "8080,metrics,*", "10.244.0.1,10.244.0.2", "60s"]
    empty = {"metadata": {"name": "e"}, "addressType": "IPv4"}
    assert row("endpointslices", empty)[2:4] == ["<unset>", "<unset>"]


def test_configmap_secret_serviceaccount_lease_rows() -> None:
    created = {"creationTimestamp": ago(days=9)}
    cm = {
        "metadata": {"name": "settings", **created},
        "data": {"a": "1", "b": "2"},
        "binaryData": {"c": "AA=="},
    }
    assert row("configmaps", cm) == ["settings", 3, "9d"]
    secret = {"metadata": {"name": "token", **created}, "type": "Opaque", "data": {"password": "cw=="}}
    assert row("secrets", secret) == ["token", "Opaque", 1, "9d"]
    sa = {"metadata": {"name": "default", **created}}
    assert row("serviceaccounts", sa) == ["default", 0, "9d"]
    lease = {"metadata": {"name": "node-1", **created}, "spec": {"holderIdentity": "node-1"}}
    assert row("leases", lease) == ["node-1", "node-1", "9d"]
    assert row("leases", {"metadata": {"name": "free"}, "spec": {}}) == ["free", "", "<unknown>"]


# --- every printer: shape and JSON --------------------------------------------------------------------


ALL = {
    "pods": RUNNING_POD,
    "deployments": {"metadata": {"name": "d"}, "spec": {"template": TEMPLATE}},
    "replicasets": {"metadata": {"name": "r"}, "spec": {"template": TEMPLATE}},
    "services": service("NodePort", [{**HTTP, "nodePort": 30080}]),
    "endpoints": {"metadata": {"name": "e"}},
    "endpointslices": {"metadata": {"name": "s"}},
    "nodes": node("n", {}, "True"),
    "namespaces": {"metadata": {"name": "ns"}},
    "events": BACKOFF,
    "configmaps": {"metadata": {"name": "c"}},
    "secrets": {"metadata": {"name": "s"}},
    "serviceaccounts": {"metadata": {"name": "sa"}},
    "leases": {"metadata": {"name": "l"}},
}


@pytest.mark.parametrize("plural", sorted(ALL))
def test_every_row_has_one_cell_per_column_and_is_json(plural: str) -> None:
    t = table(plural, ALL[plural], include_object="Object")
    definitions, cells = t["columnDefinitions"], t["rows"][0]["cells"]
    assert len(cells) == len(definitions)
    for definition, cell in zip(definitions, cells, strict=True):
        assert isinstance(cell, int if definition["type"] == "integer" else (str, int)), definition["name"]
    assert sum(d["format"] == "name" for d in definitions) == 1
    assert json.loads(json.dumps(t)) == t
