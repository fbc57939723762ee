"""The garbage collector (background, foreground, orphan) and the node lifecycle controller, in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.base import Controller
from labkit.embedded.controllers.gc import GarbageCollector
from labkit.embedded.controllers.nodelifecycle import (
    NodeLifecycleController,
    toleration_seconds,
    wanted_taints,
)
from labkit.embedded.nodes import ready_conditions
from labkit.embedded.resources import lookup

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
EVENTS = lookup("", "v1", "events")
LEASES = lookup("coordination.k8s.io", "v1", "leases")
CONFIGMAPS = lookup("", "v1", "configmaps")
DEPLOYMENTS = lookup("apps", "v1", "deployments")
REPLICASETS = lookup("apps", "v1", "replicasets")
assert PODS and NODES and EVENTS and LEASES and CONFIGMAPS and DEPLOYMENTS and REPLICASETS

CP, W1, W2 = "lab-control-plane", "lab-worker", "lab-worker2"
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


@pytest.fixture
def ctx(make_ctx: Callable[..., ClusterContext]) -> ClusterContext:
    """A 3-node cluster store with a 1 s eviction delay and a 0.5 s node grace."""
    return make_ctx(3, toleration_seconds=1, node_grace=0.5, eviction_delay=1)


def run(
    ctx: ClusterContext,
    controller: Controller,
    until: Callable[[], bool],
    during: Callable[[], Awaitable[None]] | None = None,
    timeout: float = 5.0,
) -> None:
    """Run ``controller`` (and ``during`` beside it) until ``until()`` holds; fail after ``timeout``."""

    async def main() -> None:
        ctx.store.add_listener(controller.notify)
        controller.start()
        side = asyncio.create_task(during()) if during else None
        deadline = time.monotonic() + timeout
        try:
            while not until():
                assert time.monotonic() < deadline, "timed out"
                await asyncio.sleep(0.01)
        finally:
            if side is not None:
                side.cancel()
            await controller.stop()

    asyncio.run(main())


def ref(owner: dict[str, Any], block: bool = True, controller: bool = True) -> dict[str, Any]:
    meta = owner["metadata"]
    out = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"]}
    if controller:
        out["controller"] = True
    if block:
        out["blockOwnerDeletion"] = True
    return out


def find(ctx: ClusterContext, rt: Any, name: str, ns: str | None = "default") -> dict[str, Any] | None:
    return ctx.store.find(rt.key, ns or "", name)


def events_of(ctx: ClusterContext, name: str, reason: str, ns: str = "default") -> list[dict[str, Any]]:
    return [
        e
        for e in ctx.store.list(EVENTS.key, ns)[0]
        if e["involvedObject"]["name"] == name and e["reason"] == reason
    ]


# -- garbage collection ----------------------------------------------------------------------


def chain(
    ctx: ClusterContext, pods: int = 2, node: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Deployment owning a ReplicaSet owning ``pods`` pods (bound to ``node`` if given)."""
    deploy = ctx.registry.create(
        DEPLOYMENTS,
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        },
    )
    rs = ctx.registry.create(
        REPLICASETS,
        "default",
        {
            "metadata": {"name": "web-abc", "ownerReferences": [ref(deploy)]},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        },
    )
    for i in range(pods):
        spec = {**TEMPLATE["spec"], **({"nodeName": node} if node else {})}
        body = {
            "metadata": {"name": f"web-abc-{i}", "labels": {"app": "web"}, "ownerReferences": [ref(rs)]},
            "spec": spec,
        }
        ctx.registry.create(PODS, "default", body)
    return deploy, rs


def gone(ctx: ClusterContext, *names: tuple[Any, str]) -> Callable[[], bool]:
    return lambda: all(find(ctx, rt, name) is None for rt, name in names)


def test_background_deletion_removes_the_replicasets_and_their_pods(ctx: ClusterContext) -> None:
    chain(ctx)
    ctx.registry.delete(DEPLOYMENTS, "default", "web")  # kubectl's default: background
    run(
        ctx,
        GarbageCollector(ctx),
        gone(ctx, (REPLICASETS, "web-abc"), (PODS, "web-abc-0"), (PODS, "web-abc-1")),
    )


def test_background_deletion_lets_pods_on_a_node_terminate_gracefully(ctx: ClusterContext) -> None:
    chain(ctx, pods=1, node=W1)
    ctx.registry.delete(DEPLOYMENTS, "default", "web")

    def terminating() -> bool:
        pod = find(ctx, PODS, "web-abc-0")
        return pod is not None and bool(pod["metadata"].get("deletionTimestamp"))

    run(ctx, GarbageCollector(ctx), terminating)
    assert find(ctx, REPLICASETS, "web-abc") is None
    assert find(ctx, PODS, "web-abc-0")["metadata"]["deletionGracePeriodSeconds"] == 30


def test_a_dependent_with_another_live_owner_only_loses_the_dangling_reference(ctx: ClusterContext) -> None:
    a = ctx.registry.create(CONFIGMAPS, "default", {"metadata": {"name": "a"}})
    b = ctx.registry.create(CONFIGMAPS, "default", {"metadata": {"name": "b"}})
    ctx.registry.create(
        CONFIGMAPS,
        "default",
        {
            "metadata": {
                "name": "shared",
                "ownerReferences": [ref(a, controller=False), ref(b, controller=False)],
            }
        },
    )
    ctx.registry.delete(CONFIGMAPS, "default", "a")

    def only_b() -> bool:
        refs = (find(ctx, CONFIGMAPS, "shared") or {}).get("metadata", {}).get("ownerReferences", [])
        return [r["name"] for r in refs] == ["b"]

    run(ctx, GarbageCollector(ctx), only_b)
    ctx.registry.delete(CONFIGMAPS, "default", "b")
    run(ctx, GarbageCollector(ctx), gone(ctx, (CONFIGMAPS, "shared")))


def test_an_owner_that_never_existed_or_has_another_uid_is_absent(ctx: ClusterContext) -> None:
    real = ctx.registry.create(CONFIGMAPS, "default", {"metadata": {"name": "real"}})
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "no-such-uid"}
    wrong_uid = {**ref(real), "uid": "stale-uid"}
    ctx.registry.create(CONFIGMAPS, "default", {"metadata": {"name": "orphan1", "ownerReferences": [ghost]}})
    ctx.registry.create(
        CONFIGMAPS, "default", {"metadata": {"name": "orphan2", "ownerReferences": [wrong_uid]}}
    )
    run(ctx, GarbageCollector(ctx), gone(ctx, (CONFIGMAPS, "orphan1"), (CONFIGMAPS, "orphan2")))
    assert find(ctx, CONFIGMAPS, "real") is not None


def test_an_owner_of_a_kind_not_served_is_left_alone(ctx: ClusterContext) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u-1", "controller": True}
    ctx.registry.create(CONFIGMAPS, "default", {"metadata": {"name": "kept", "ownerReferences": [widget]}})
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "no-such-uid"}
    ctx.registry.create(CONFIGMAPS, "default", {"metadata": {"name": "marker", "ownerReferences": [ghost]}})
    run(ctx, GarbageCollector(ctx), gone(ctx, (CONFIGMAPS, "marker")))  # the collector has run
    assert find(ctx, CONFIGMAPS, "kept") is not None


def test_foreground_deletion_waits_for_blocking_dependents_down_the_chain(ctx: ClusterContext) -> None:
    chain(ctx, pods=2, node=W1)
    deploy, _ = ctx.registry.delete(DEPLOYMENTS, "default", "web", {"propagationPolicy": "Foreground"})
    assert deploy["metadata"]["finalizers"] == ["foregroundDeletion"]

    def pods_terminating() -> bool:
        pods = [find(ctx, PODS, f"web-abc-{i}") for i in range(2)]
        return all(p and p["metadata"].get("deletionTimestamp") for p in pods)

    run(ctx, GarbageCollector(ctx), pods_terminating)
    rs = find(ctx, REPLICASETS, "web-abc")
    assert rs is not None and "foregroundDeletion" in rs["metadata"]["finalizers"]
    assert find(ctx, DEPLOYMENTS, "web") is not None  # still waiting for the pods

    async def kubelet_finishes() -> None:
        for i in range(2):
            await asyncio.sleep(0.05)
            ctx.registry.finish_deletion(PODS, "default", f"web-abc-{i}")

    run(
        ctx,
        GarbageCollector(ctx),
        gone(ctx, (DEPLOYMENTS, "web"), (REPLICASETS, "web-abc")),
        during=kubelet_finishes,
    )
    assert ctx.store.list(PODS.key, "default")[0] == []


def test_foreground_deletion_does_not_wait_for_non_blocking_dependents(ctx: ClusterContext) -> None:
    owner = ctx.registry.create(CONFIGMAPS, "default", {"metadata": {"name": "owner"}})
    body = {
        "metadata": {"name": "loose", "ownerReferences": [ref(owner, block=False)]},
        "spec": {**TEMPLATE["spec"], "nodeName": W1},
    }
    ctx.registry.create(PODS, "default", body)
    ctx.registry.delete(CONFIGMAPS, "default", "owner", {"propagationPolicy": "Foreground"})
    run(ctx, GarbageCollector(ctx), gone(ctx, (CONFIGMAPS, "owner")))
    assert find(ctx, PODS, "loose")["metadata"].get("deletionTimestamp")  # deleted, still terminating


def test_foreground_deletion_of_an_owner_without_dependents(ctx: ClusterContext) -> None:
    ctx.registry.create(CONFIGMAPS, "default", {"metadata": {"name": "alone"}})
    ctx.registry.delete(CONFIGMAPS, "default", "alone", {"propagationPolicy": "Foreground"})
    assert find(ctx, CONFIGMAPS, "alone") is not None
    run(ctx, GarbageCollector(ctx), gone(ctx, (CONFIGMAPS, "alone")))


def test_orphan_deletion_keeps_the_dependents_and_drops_their_references(ctx: ClusterContext) -> None:
    chain(ctx)
    ctx.registry.delete(DEPLOYMENTS, "default", "web", {"propagationPolicy": "Orphan"})
    run(ctx, GarbageCollector(ctx), gone(ctx, (DEPLOYMENTS, "web")))
    rs = find(ctx, REPLICASETS, "web-abc")
    assert rs is not None and "ownerReferences" not in rs["metadata"]
    pod = find(ctx, PODS, "web-abc-0")
    assert pod is not None and pod["metadata"]["ownerReferences"][0]["name"] == "web-abc"


def test_orphan_through_the_legacy_option(ctx: ClusterContext) -> None:
    chain(ctx, pods=0)
    ctx.registry.delete(DEPLOYMENTS, "default", "web", {"orphanDependents": True})
    run(ctx, GarbageCollector(ctx), gone(ctx, (DEPLOYMENTS, "web")))
    assert "ownerReferences" not in find(ctx, REPLICASETS, "web-abc")["metadata"]


def test_garbage_left_while_the_collector_was_down_is_collected_at_start(ctx: ClusterContext) -> None:
    chain(ctx)
    ctx.registry.delete(DEPLOYMENTS, "default", "web")  # nobody collects: the daemon is "down"
    assert find(ctx, REPLICASETS, "web-abc") is not None
    run(
        ctx,
        GarbageCollector(ctx),
        gone(ctx, (REPLICASETS, "web-abc"), (PODS, "web-abc-0"), (PODS, "web-abc-1")),
    )


def test_the_index_follows_owner_reference_changes(ctx: ClusterContext) -> None:
    deploy, rs = chain(ctx, pods=1)
    gc = GarbageCollector(ctx)

    def detach(obj: dict[str, Any]) -> None:
        obj["metadata"].pop("ownerReferences")

    async def edit() -> None:
        await asyncio.sleep(0.05)
        ctx.registry.mutate(REPLICASETS, "default", "web-abc", detach)
        ctx.registry.delete(DEPLOYMENTS, "default", "web")

    run(ctx, gc, gone(ctx, (DEPLOYMENTS, "web")), during=edit)
    assert gc.dependents(deploy["metadata"]["uid"]) == []
    assert len(gc.dependents(rs["metadata"]["uid"])) == 1
    assert find(ctx, REPLICASETS, "web-abc") is not None  # detached before its owner went


# -- node lifecycle ----------------------------------------------------------------------------


def micro_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def renew(ctx: ClusterContext, node: str) -> None:
    def change(lease: dict[str, Any]) -> None:
        lease["spec"]["renewTime"] = micro_now()

    ctx.registry.mutate(LEASES, "kube-node-lease", node, change)


def heartbeats(ctx: ClusterContext, nodes: set[str]) -> Callable[[], Awaitable[None]]:
    """Kubelets of ``nodes`` (a set the test may change) renewing their leases every 0.1 s."""

    async def beat() -> None:
        while True:
            for node in sorted(nodes):
                renew(ctx, node)
            await asyncio.sleep(0.1)

    return beat


def post_ready(ctx: ClusterContext, node: str, ready: bool = True) -> None:
    """What a kubelet posts: its conditions, with a fresh heartbeat."""

    def change(obj: dict[str, Any]) -> None:
        conditions = ready_conditions(ready)
        if not ready:
            conditions[-1].update(
                status="False", reason="KubeletNotReady", message="container runtime is down"
            )
        obj["status"]["conditions"] = conditions

    ctx.registry.mutate(NODES, None, node, change, subresource="status")


def taints(ctx: ClusterContext, node: str) -> dict[tuple[str, str], dict[str, Any]]:
    spec = find(ctx, NODES, node, None)["spec"]
    return {(t["key"], t["effect"]): t for t in spec.get("taints", [])}


def ready_condition(ctx: ClusterContext, node: str) -> dict[str, Any]:
    return next(c for c in find(ctx, NODES, node, None)["status"]["conditions"] if c["type"] == "Ready")


def running_pod(
    ctx: ClusterContext, name: str, node: str, tolerations: list[dict[str, Any]] | None = None
) -> None:
    spec: dict[str, Any] = {**TEMPLATE["spec"], "nodeName": node}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    ctx.registry.create(PODS, "default", {"metadata": {"name": name}, "spec": spec})

    def running(pod: dict[str, Any]) -> None:
        pod["status"].update(phase="Running", conditions=[{"type": "Ready", "status": "True"}])

    ctx.registry.mutate(PODS, "default", name, running, subresource="status")


def deleting(ctx: ClusterContext, name: str) -> bool:
    pod = find(ctx, PODS, name)
    return pod is None or bool(pod["metadata"].get("deletionTimestamp"))


UNREACHABLE = "node.kubernetes.io/unreachable"


def test_a_silent_node_goes_unknown_is_tainted_and_evicts_after_the_toleration(ctx: ClusterContext) -> None:
    running_pod(ctx, "short", W1)  # the default tolerations: 1 s here
    running_pod(ctx, "forever", W1, [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}])
    running_pod(
        ctx,
        "long",
        W1,
        [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3600}],
    )
    running_pod(ctx, "elsewhere", W2)
    alive = {CP, W2}
    controller = NodeLifecycleController(ctx)
    started = time.monotonic()
    run(
        ctx,
        controller,
        lambda: ready_condition(ctx, W1)["status"] == "Unknown",
        during=heartbeats(ctx, alive),
    )
    assert time.monotonic() - started >= 0.5  # node_grace
    ready = ready_condition(ctx, W1)
    assert (ready["reason"], ready["message"]) == (
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    )
    statuses = {c["type"]: c["status"] for c in find(ctx, NODES, W1, None)["status"]["conditions"]}
    assert statuses == dict.fromkeys(("MemoryPressure", "DiskPressure", "PIDPressure", "Ready"), "Unknown")
    assert ready_condition(ctx, W2)["status"] == "True"

    controller = NodeLifecycleController(ctx)
    tainted_at: list[float] = []

    def evicted() -> bool:
        if not tainted_at and (UNREACHABLE, "NoExecute") in taints(ctx, W1):
            tainted_at.append(time.monotonic())
        return deleting(ctx, "short")

    run(ctx, controller, evicted, during=heartbeats(ctx, alive))
    assert set(taints(ctx, W1)) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert all(t.get("timeAdded") for t in taints(ctx, W1).values())
    assert taints(ctx, W2) == {}
    [event] = events_of(ctx, "short", "TaintManagerEviction")
    assert event["message"] == "Marking for deletion Pod default/short"
    assert event["source"]["component"] == "taint-eviction-controller"
    pod = find(ctx, PODS, "short")
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 30  # an ordinary graceful delete
    target = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (target["status"], target["reason"]) == ("True", "DeletionByTaintManager")
    assert not deleting(ctx, "forever") and not deleting(ctx, "long") and not deleting(ctx, "elsewhere")


def test_the_toleration_delay_is_waited_and_recovery_untaints_and_cancels(ctx: ClusterContext) -> None:
    running_pod(ctx, "short", W1)
    running_pod(
        ctx,
        "long",
        W1,
        [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3600}],
    )
    alive = {CP, W2}
    controller = NodeLifecycleController(ctx)
    seen: dict[str, float] = {}

    def until() -> bool:
        now = time.monotonic()
        if "tainted" not in seen and (UNREACHABLE, "NoExecute") in taints(ctx, W1):
            seen["tainted"] = now
        if "evicted" not in seen and deleting(ctx, "short"):
            seen["evicted"] = now
            alive.add(W1)  # the kubelet comes back
            post_ready(ctx, W1)
        return "evicted" in seen and taints(ctx, W1) == {}

    run(ctx, controller, until, during=heartbeats(ctx, alive))
    assert seen["evicted"] - seen["tainted"] >= 0.9  # tolerationSeconds 1
    [node_event] = events_of(ctx, W1, "NodeNotReady")
    assert node_event["message"] == f"Node {W1} status is now: NodeNotReady"
    [pod_event] = events_of(ctx, "long", "NodeNotReady")
    assert (pod_event["type"], pod_event["message"]) == ("Warning", "Node is not ready")
    long_pod = find(ctx, PODS, "long")
    assert next(c for c in long_pod["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"
    cancelled = events_of(ctx, "long", "TaintManagerEviction")
    assert [e["message"] for e in cancelled] == ["Cancelling deletion of Pod default/long"]
    assert not deleting(ctx, "long")


def test_a_node_its_kubelet_reports_not_ready_gets_the_not_ready_taints(ctx: ClusterContext) -> None:
    post_ready(ctx, W2, ready=False)
    keys = {("node.kubernetes.io/not-ready", "NoSchedule"), ("node.kubernetes.io/not-ready", "NoExecute")}
    run(
        ctx,
        NodeLifecycleController(ctx),
        lambda: set(taints(ctx, W2)) == keys,
        during=heartbeats(ctx, {CP, W1, W2}),
    )
    assert ready_condition(ctx, W2)["reason"] == "KubeletNotReady"  # the kubelet's word stands


def test_a_no_execute_taint_without_a_matching_toleration_evicts_at_once(ctx: ClusterContext) -> None:
    running_pod(ctx, "plain", W2)
    running_pod(
        ctx, "tolerant", W2, [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoExecute"}]
    )

    def taint(node: dict[str, Any]) -> None:
        node["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]

    async def act() -> None:
        await asyncio.sleep(0.05)
        ctx.registry.mutate(NODES, None, W2, taint)
        await heartbeats(ctx, {CP, W1, W2})()

    run(ctx, NodeLifecycleController(ctx), lambda: deleting(ctx, "plain"), during=act)
    assert not deleting(ctx, "tolerant")
    assert taints(ctx, W2) == {
        ("dedicated", "NoExecute"): {"key": "dedicated", "value": "db", "effect": "NoExecute"}
    }


def test_cordon_adds_the_unschedulable_taint_and_uncordon_removes_it(ctx: ClusterContext) -> None:
    def cordon(value: bool) -> Callable[[dict[str, Any]], None]:
        def change(node: dict[str, Any]) -> None:
            node["spec"]["unschedulable"] = value

        return change

    for node in (CP, W1):
        ctx.registry.mutate(NODES, None, node, cordon(True))
    key = ("node.kubernetes.io/unschedulable", "NoSchedule")
    beats = heartbeats(ctx, {CP, W1, W2})
    run(
        ctx,
        NodeLifecycleController(ctx),
        lambda: key in taints(ctx, CP) and key in taints(ctx, W1),
        during=beats,
    )
    assert taints(ctx, W1)[key]["timeAdded"]
    assert ("node-role.kubernetes.io/control-plane", "NoSchedule") in taints(ctx, CP)  # others' taints stay
    ctx.registry.mutate(NODES, None, CP, cordon(False))
    run(ctx, NodeLifecycleController(ctx), lambda: key not in taints(ctx, CP), during=beats)
    assert set(taints(ctx, CP)) == {("node-role.kubernetes.io/control-plane", "NoSchedule")}
    assert key in taints(ctx, W1)


def test_toleration_seconds_follow_upstream() -> None:
    taint = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert toleration_seconds(taint, []) is None
    assert toleration_seconds(taint, [{"key": "other", "operator": "Exists"}]) is None
    assert toleration_seconds(taint, [{"key": UNREACHABLE, "operator": "Exists"}]) == float("inf")
    both = [{"operator": "Exists"}, {"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 30}]
    assert toleration_seconds(taint, both) == 30  # a toleration without seconds does not win
    assert toleration_seconds(taint, [{"operator": "Exists", "tolerationSeconds": -5}]) == 0


def test_wanted_taints_from_conditions_and_cordon() -> None:
    node = {
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "Unknown"},
                {"type": "DiskPressure", "status": "True"},
                {"type": "MemoryPressure", "status": "False"},
            ]
        },
    }
    assert wanted_taints(node) == {
        (UNREACHABLE, "NoSchedule"),
        (UNREACHABLE, "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    }
    healthy = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert wanted_taints(healthy) == set()
