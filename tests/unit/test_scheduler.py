"""The scheduler, in-process: filters, spreading, tie-breaks and upstream's failure messages."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.bootstrap import bootstrap
from labkit.embedded.context import ClusterContext
from labkit.embedded.nodes import node_object
from labkit.embedded.resources import lookup
from labkit.embedded.scheduler import Scheduler
from labkit.embedded.scheduling.filters import node_matches
from labkit.embedded.scheduling.fiterror import failure_message
from labkit.embedded.scheduling.nodeinfo import pod_requests
from labkit.embedded.scheduling.taints import tolerates
from labkit.embedded.state import ClusterConfig, ClusterDir
from labkit.embedded.store import Store

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
EVENTS = lookup("", "v1", "events")
assert PODS and NODES and EVENTS

CP, W1, W2 = "lab-control-plane", "lab-worker", "lab-worker2"
CP_TAINT = "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"


def make_pod(
    ctx: ClusterContext,
    name: str,
    labels: dict[str, str] | None = None,
    owner: str | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    if requests:
        container["resources"] = {"requests": requests}
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": f"uid-{owner}",
                "controller": True,
            }
        ]
    return ctx.registry.create(
        PODS, "default", {"metadata": meta, "spec": {"containers": [container], **spec}}
    )


def node_of(ctx: ClusterContext, name: str) -> str | None:
    return ctx.registry.get(PODS, "default", name)["spec"].get("nodeName")


def condition(ctx: ClusterContext, name: str) -> dict[str, Any]:
    pod = ctx.registry.get(PODS, "default", name)
    return next(c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled")


def events_of(ctx: ClusterContext, name: str, reason: str) -> list[dict[str, Any]]:
    items, _ = ctx.store.list(EVENTS.key, "default")
    return [e for e in items if e["involvedObject"]["name"] == name and e["reason"] == reason]


def edit_node(
    ctx: ClusterContext, name: str, change: Callable[[dict[str, Any]], None], status: bool = False
) -> None:
    ctx.registry.mutate(NODES, None, name, change, subresource="status" if status else None)


def run(
    ctx: ClusterContext, until: Callable[[], bool], during: Callable[[], None] | None = None
) -> Scheduler:
    """Start a scheduler, optionally act, and wait (at most 5 s) until ``until()`` holds."""

    async def main() -> Scheduler:
        scheduler = Scheduler(ctx)
        ctx.store.add_listener(scheduler.notify)
        scheduler.start()
        if during is not None:
            during()
        deadline = time.monotonic() + 5
        while not until():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)
        await scheduler.stop()
        return scheduler

    return asyncio.run(main())


def all_bound(ctx: ClusterContext) -> bool:
    return all(p["spec"].get("nodeName") for p in ctx.store.list(PODS.key)[0])


# -- spreading and tie-breaks ----------------------------------------------------------------


@pytest.mark.parametrize("replicas", [2, 4])
def test_replicas_of_one_owner_spread_over_the_workers_not_the_control_plane(
    ctx: ClusterContext, replicas: int
) -> None:
    for i in range(replicas):
        make_pod(ctx, f"web-{i}", {"app": "web"}, owner="web-rs")
    run(ctx, lambda: all_bound(ctx))
    placed = Counter(node_of(ctx, f"web-{i}") for i in range(replicas))
    assert placed == {W1: replicas // 2, W2: replicas // 2}


def test_binding_sets_pod_scheduled_and_records_the_scheduled_event(ctx: ClusterContext) -> None:
    make_pod(ctx, "one")
    run(ctx, lambda: all_bound(ctx))
    assert node_of(ctx, "one") == W1  # equal nodes: the first by name
    assert condition(ctx, "one")["status"] == "True"
    [event] = events_of(ctx, "one", "Scheduled")
    assert event["message"] == f"Successfully assigned default/one to {W1}"
    assert event["source"]["component"] == "default-scheduler" and event["type"] == "Normal"
    pod = ctx.registry.get(PODS, "default", "one")
    assert pod["metadata"]["managedFields"][-1]["manager"] == "default-scheduler"


def test_same_labels_spread_when_there_is_no_owner(ctx: ClusterContext) -> None:
    for i in range(4):
        make_pod(ctx, f"solo-{i}", {"app": "solo"})
    run(ctx, lambda: all_bound(ctx))
    assert Counter(node_of(ctx, f"solo-{i}") for i in range(4)) == {W1: 2, W2: 2}


def test_a_tie_in_the_group_goes_to_the_node_with_fewer_pods(ctx: ClusterContext) -> None:
    make_pod(ctx, "other", {"app": "other"}, nodeName=W1)  # bound already: counts on W1
    make_pod(ctx, "new", {"app": "new"})
    run(ctx, lambda: all_bound(ctx))
    assert node_of(ctx, "new") == W2


def test_the_owner_spread_wins_over_the_total_pod_count(ctx: ClusterContext) -> None:
    for i in range(3):
        make_pod(ctx, f"busy-{i}", {"app": "busy"}, nodeName=W2)
    make_pod(ctx, "web-0", {"app": "web"}, owner="rs", nodeName=W1)
    make_pod(ctx, "web-1", {"app": "web"}, owner="rs")
    run(ctx, lambda: all_bound(ctx))
    assert node_of(ctx, "web-1") == W2  # busier, but has none of this owner's pods


def test_a_pod_that_tolerates_the_control_plane_taint_may_land_there(ctx: ClusterContext) -> None:
    toleration = {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    make_pod(ctx, "admin", tolerations=[toleration])
    run(ctx, lambda: all_bound(ctx))
    assert node_of(ctx, "admin") == CP  # all empty: first by name


def test_pods_of_another_scheduler_are_left_alone(ctx: ClusterContext) -> None:
    make_pod(ctx, "theirs", schedulerName="my-scheduler")
    make_pod(ctx, "ours")
    run(ctx, lambda: node_of(ctx, "ours") is not None)
    assert node_of(ctx, "theirs") is None


# -- filters -----------------------------------------------------------------------------------


def test_node_selector(ctx: ClusterContext) -> None:
    edit_node(ctx, W2, lambda n: n["metadata"]["labels"].update(disk="ssd"))
    for i in range(3):
        make_pod(ctx, f"db-{i}", {"app": "db"}, nodeSelector={"disk": "ssd"})
    run(ctx, lambda: all_bound(ctx))
    assert {node_of(ctx, f"db-{i}") for i in range(3)} == {W2}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ({"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [W2]}]}, W2),
        ({"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": [W1]}]}, W2),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, W2),
        ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, W1),
        ({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}, W2),
        ({"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["5"]}]}, W1),
        ({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [W2]}]}, W2),
    ],
)
def test_required_node_affinity(ctx: ClusterContext, term: dict[str, Any], expected: str) -> None:
    edit_node(ctx, W1, lambda n: n["metadata"]["labels"].update(gen="4"))
    edit_node(ctx, W2, lambda n: n["metadata"]["labels"].update(gen="5", gpu="yes"))
    affinity = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
    }
    make_pod(ctx, "picky", affinity=affinity)
    run(ctx, lambda: all_bound(ctx))
    assert node_of(ctx, "picky") == expected


def test_node_selector_terms_are_ored_and_expressions_anded() -> None:
    labels = {"zone": "a", "disk": "ssd"}
    both = {
        "matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a"]},
            {"key": "disk", "operator": "In", "values": ["hdd"]},
        ]
    }
    either = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}
    ok = {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}

    def spec(*terms: dict[str, Any]) -> dict[str, Any]:
        required = {"nodeSelectorTerms": list(terms)}
        return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}}

    assert not node_matches(spec(both), labels, "n")
    assert not node_matches(spec(both, either), labels, "n")
    assert node_matches(spec(both, ok), labels, "n")
    assert not node_matches(spec({}), labels, "n")  # an empty term selects nothing
    assert not node_matches(
        spec({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["x"]}]}), {"gen": "5"}, "n"
    )


def test_an_impossible_selector_stays_pending_with_upstreams_message(ctx: ClusterContext) -> None:
    make_pod(ctx, "lost", nodeSelector={"disk": "nvme"})
    expected = (
        f"0/3 nodes are available: {CP_TAINT}, 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )

    def failed() -> bool:
        return bool(events_of(ctx, "lost", "FailedScheduling"))

    run(ctx, failed)
    assert node_of(ctx, "lost") is None
    cond = condition(ctx, "lost")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", expected)
    [event] = events_of(ctx, "lost", "FailedScheduling")
    assert event["type"] == "Warning" and event["message"] == expected


def test_failed_scheduling_is_recorded_once_while_retrying_and_a_node_change_schedules(
    ctx: ClusterContext,
) -> None:
    make_pod(ctx, "lost", nodeSelector={"disk": "nvme"})
    labelled = []

    def until() -> bool:
        if events_of(ctx, "lost", "FailedScheduling") and not labelled:
            labelled.append(True)
            edit_node(ctx, W2, lambda n: n["metadata"]["labels"].update(disk="nvme"))
        return node_of(ctx, "lost") is not None

    run(ctx, until)
    assert node_of(ctx, "lost") == W2
    [event] = events_of(ctx, "lost", "FailedScheduling")
    assert event["count"] == 1
    assert condition(ctx, "lost")["status"] == "True"


def test_retries_do_not_repeat_the_event(ctx: ClusterContext) -> None:
    make_pod(ctx, "lost", nodeSelector={"disk": "nvme"})
    started = time.monotonic()
    run(ctx, lambda: time.monotonic() - started > 2.5)  # back-off 1 s, 2 s: at least two retries
    [event] = events_of(ctx, "lost", "FailedScheduling")
    assert event["count"] == 1


def _allocatable(cpu: str, memory: str = "1Gi", pods: str = "110") -> Callable[[dict[str, Any]], None]:
    def change(node: dict[str, Any]) -> None:
        node["status"]["allocatable"].update(cpu=cpu, memory=memory, pods=pods)

    return change


def test_requests_are_held_against_allocatable_minus_what_is_bound(ctx: ClusterContext) -> None:
    for node in (W1, W2):
        edit_node(ctx, node, _allocatable("1"), status=True)
    make_pod(ctx, "a", {"app": "a"}, cpu="600m")
    make_pod(ctx, "b", {"app": "b"}, cpu="600m")
    make_pod(ctx, "c", {"app": "c"}, cpu="600m")
    run(
        ctx,
        lambda: (
            node_of(ctx, "a") is not None
            and node_of(ctx, "b") is not None
            and bool(events_of(ctx, "c", "FailedScheduling"))
        ),
    )
    assert {node_of(ctx, "a"), node_of(ctx, "b")} == {W1, W2}
    assert condition(ctx, "c")["message"] == (
        f"0/3 nodes are available: {CP_TAINT}, 2 Insufficient cpu. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    )


def test_a_pod_that_fits_once_another_leaves(ctx: ClusterContext) -> None:
    for node in (W1, W2):
        edit_node(ctx, node, _allocatable("4", memory="1Gi"), status=True)
    make_pod(ctx, "big", memory="800Mi", nodeName=W1)
    make_pod(ctx, "big2", memory="800Mi", nodeName=W2)
    make_pod(ctx, "late", memory="500Mi")
    deleted = []

    def until() -> bool:
        if events_of(ctx, "late", "FailedScheduling") and not deleted:
            assert "2 Insufficient memory" in condition(ctx, "late")["message"]
            deleted.append(ctx.registry.delete(PODS, "default", "big", {"gracePeriodSeconds": 0}))
        return node_of(ctx, "late") is not None

    run(ctx, until)
    assert node_of(ctx, "late") == W1


def test_too_many_pods(ctx: ClusterContext) -> None:
    for node in (W1, W2):
        edit_node(ctx, node, _allocatable("4", pods="1"), status=True)
    make_pod(ctx, "x", nodeName=W1)
    make_pod(ctx, "y", nodeName=W2)
    make_pod(ctx, "z")
    run(ctx, lambda: bool(events_of(ctx, "z", "FailedScheduling")))
    assert f"{CP_TAINT}, 2 Too many pods." in condition(ctx, "z")["message"]


def test_cordoned_nodes_take_no_new_pods(ctx: ClusterContext) -> None:
    edit_node(ctx, W1, lambda n: n["spec"].update(unschedulable=True))
    for i in range(2):
        make_pod(ctx, f"web-{i}", {"app": "web"}, owner="rs")
    run(ctx, lambda: all_bound(ctx))
    assert {node_of(ctx, "web-0"), node_of(ctx, "web-1")} == {W2}
    edit_node(ctx, W2, lambda n: n["spec"].update(unschedulable=True))
    make_pod(ctx, "late")
    run(ctx, lambda: bool(events_of(ctx, "late", "FailedScheduling")))
    assert condition(ctx, "late")["message"].startswith(
        f"0/3 nodes are available: {CP_TAINT}, 2 node(s) were unschedulable. "
    )


def test_a_node_that_is_not_ready_counts_as_tainted(ctx: ClusterContext) -> None:
    def not_ready(node: dict[str, Any]) -> None:
        for c in node["status"]["conditions"]:
            if c["type"] == "Ready":
                c["status"] = "False"

    edit_node(ctx, W1, not_ready, status=True)
    make_pod(ctx, "p")
    make_pod(ctx, "q", nodeSelector={"kubernetes.io/hostname": W1})
    run(ctx, lambda: node_of(ctx, "p") is not None and bool(events_of(ctx, "q", "FailedScheduling")))
    assert node_of(ctx, "p") == W2
    assert condition(ctx, "q")["message"] == (
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        f"{CP_TAINT}, 1 node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_no_nodes_at_all(ctx: ClusterContext) -> None:
    for name in (CP, W1, W2):
        ctx.registry.delete(NODES, None, name)
    make_pod(ctx, "alone")
    run(ctx, lambda: bool(events_of(ctx, "alone", "FailedScheduling")))
    assert condition(ctx, "alone")["message"] == "no nodes available to schedule pods"


def test_scheduling_gates_hold_a_pod(ctx: ClusterContext) -> None:
    make_pod(ctx, "gated", schedulingGates=[{"name": "wait"}])
    run(ctx, lambda: "reason" in condition_or_empty(ctx, "gated"))
    cond = condition(ctx, "gated")
    assert (cond["status"], cond["reason"]) == ("False", "SchedulingGated")
    assert node_of(ctx, "gated") is None


def condition_or_empty(ctx: ClusterContext, name: str) -> dict[str, Any]:
    conditions = ctx.registry.get(PODS, "default", name)["status"].get("conditions", [])
    return next((c for c in conditions if c["type"] == "PodScheduled"), {})


# -- pure helpers ------------------------------------------------------------------------------


def test_tolerations_match_taints_as_upstream() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates({"key": "k", "operator": "Equal", "value": "v"}, taint)
    assert tolerates({"key": "k", "value": "v", "effect": "NoSchedule"}, taint)  # operator defaults to Equal
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert tolerates({"operator": "Exists"}, taint)  # empty key + Exists tolerates everything


def test_requests_sum_containers_and_take_the_largest_init_container() -> None:
    spec = {
        "containers": [
            {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            {"resources": {"requests": {"cpu": "0.25"}}},
        ],
        "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}],
    }
    assert pod_requests(spec) == (1000, 64 * 2**20)


def test_failure_message_sorts_the_reasons_as_strings() -> None:
    failures = {f"n{i}": (["Insufficient cpu"], True) for i in range(10)}
    failures["cp"] = (["node(s) were unschedulable"], False)
    failures["cq"] = (["node(s) were unschedulable"], False)
    assert failure_message(12, failures) == (
        "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) were unschedulable. "
        "preemption: 0/12 nodes are available: 10 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )


# -- scale ---------------------------------------------------------------------------------------


def test_a_thousand_pods_on_a_hundred_nodes(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    registry = Registry(store)
    bootstrap(registry, "big", 1)
    for i in range(1, 101):
        registry.create(NODES, None, node_object(f"big-worker{i}", i, False))
    for i in range(1000):
        registry.create(
            PODS,
            "default",
            {
                "metadata": {"name": f"p{i}", "labels": {"app": f"a{i % 10}"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        )
    ctx = ClusterContext(registry, ClusterConfig("big"), ClusterDir("big", tmp_path))
    started = time.monotonic()
    run(ctx, lambda: all_bound(ctx))
    elapsed = time.monotonic() - started
    print(f"\nscheduled 1000 pods on 100 nodes in {elapsed:.2f}s ({1000 / elapsed:.0f} pods/s)")
    per_node = Counter(p["spec"]["nodeName"] for p in store.list(PODS.key)[0])
    assert max(per_node.values()) - min(per_node.values()) <= 1  # evenly spread
    assert elapsed < 10
    store.close()
