"""The ReplicaSet and Deployment controllers, in-process, with a tiny fake kubelet.

The fake kubelet binds each new pod to a worker, marks it Running and Ready after a delay
(through the status subresource) and finishes graceful deletions after another, so
availability moves as on a cluster. Store listeners check invariants at every write.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers import workloads as wl
from labkit.embedded.controllers.deployment import DeploymentController
from labkit.embedded.controllers.replicaset import ReplicaSetController, pods_to_delete
from labkit.embedded.resources import lookup
from labkit.embedded.store import Event
from labkit.shared.timeutil import rfc3339

PODS = lookup("", "v1", "pods")
EVENTS = lookup("", "v1", "events")
RS = lookup("apps", "v1", "replicasets")
DEPLOY = lookup("apps", "v1", "deployments")
assert PODS and EVENTS and RS and DEPLOY

Obj = dict[str, Any]
NS = "default"
SUFFIX = "[bcdfghjklmnpqrstvwxz2456789]{5}"


# -- harness ---------------------------------------------------------------------------------


class FakeKubelet:
    """Binds pods to workers, makes them Running and Ready, and ends graceful deletions."""

    def __init__(self, ctx: ClusterContext, ready_after: float = 0.02, stop_after: float = 0.02) -> None:
        self.ctx = ctx
        self.ready_after = ready_after
        self.stop_after = stop_after
        self.ready = True
        self._first_seen: dict[str, float] = {}
        self._deleting_since: dict[str, float] = {}
        self._turn = 0

    async def run(self) -> None:
        """Poll the store and move each pod one step."""
        while True:
            self.step(asyncio.get_running_loop().time())
            await asyncio.sleep(0.005)

    def step(self, now: float) -> None:
        """Advance every pod that is due."""
        pods, _ = self.ctx.store.list(PODS.key, None)
        for pod in list(pods):
            meta, name, ns = pod["metadata"], pod["metadata"]["name"], pod["metadata"]["namespace"]
            first = self._first_seen.setdefault(meta["uid"], now)
            if meta.get("deletionTimestamp"):
                since = self._deleting_since.setdefault(meta["uid"], now)
                if now - since >= self.stop_after:
                    self.ctx.registry.finish_deletion(PODS, ns, name)
            elif not pod["spec"].get("nodeName"):
                self._turn += 1
                node = ("lab-worker", "lab-worker2")[self._turn % 2]
                self.ctx.registry.mutate(PODS, ns, name, lambda p, n=node: p["spec"].update(nodeName=n))
            elif self.ready and pod["status"].get("phase") == "Pending" and now - first >= self.ready_after:
                self.ctx.registry.mutate(PODS, ns, name, _running, subresource="status")


def _running(pod: Obj) -> None:
    when = rfc3339()
    pod["status"].update(
        phase="Running",
        conditions=[
            {"type": "Ready", "status": "True", "lastTransitionTime": when},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": when},
        ],
        containerStatuses=[
            {"name": c["name"], "ready": True, "restartCount": 0, "state": {"running": {"startedAt": when}}}
            for c in pod["spec"]["containers"]
        ],
    )


class Cluster:
    """The controllers and the fake kubelet running in one event loop."""

    def __init__(self, ctx: ClusterContext, kubelet: FakeKubelet, now: wl.Clock) -> None:
        self.ctx = ctx
        self.kubelet = kubelet
        self.rsc = ReplicaSetController(ctx, now=now)
        self.dc = DeploymentController(ctx, now=now)

    def on_write(self, check: Callable[[Event], None]) -> None:
        """Call ``check`` after every store write."""
        self.ctx.store.add_listener(check)

    async def wait(self, what: Callable[[], Any], timeout: float = 8.0) -> Any:
        """Poll until ``what()`` is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = what()
            if value:
                return value
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")


def run(
    ctx: ClusterContext,
    scenario: Callable[[Cluster], Awaitable[None]],
    kubelet: FakeKubelet | None = None,
    now: wl.Clock | None = None,
) -> None:
    """Run ``scenario`` with both controllers and the kubelet started, then stop them."""

    async def main() -> None:
        cluster = Cluster(ctx, kubelet or FakeKubelet(ctx), now or (lambda: datetime.now(timezone.utc)))
        for controller in (cluster.rsc, cluster.dc):
            ctx.store.add_listener(controller.notify)
            controller.start()
        task = asyncio.get_running_loop().create_task(cluster.kubelet.run())
        try:
            await scenario(cluster)
        finally:
            task.cancel()
            await cluster.rsc.stop()
            await cluster.dc.stop()

    asyncio.run(main())


def template(image: str = "nginx:1.25", labels: Obj | None = None) -> Obj:
    """A pod template."""
    return {
        "metadata": {"labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }


def make_rs(ctx: ClusterContext, name: str = "web", replicas: int = 3, **spec: Any) -> Obj:
    """Create a bare ReplicaSet selecting app=web."""
    body = {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(),
            **spec,
        },
    }
    return ctx.registry.create(RS, NS, body)


def make_deploy(ctx: ClusterContext, replicas: int = 3, name: str = "web", **spec: Any) -> Obj:
    """Create a Deployment selecting app=web."""
    body = {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(),
            **spec,
        },
    }
    return ctx.registry.create(DEPLOY, NS, body)


def get(ctx: ClusterContext, rt: Any, name: str) -> Obj:
    """An object (a copy)."""
    return ctx.registry.get(rt, NS, name)


def pods(ctx: ClusterContext, live_only: bool = False) -> list[Obj]:
    """Pods in the namespace; ``live_only`` leaves out terminating ones."""
    items, _ = ctx.store.list(PODS.key, NS)
    return [p for p in items if not (live_only and p["metadata"].get("deletionTimestamp"))]


def sets(ctx: ClusterContext) -> list[Obj]:
    """ReplicaSets in the namespace, lowest revision first (creation times have whole seconds)."""
    items, _ = ctx.store.list(RS.key, NS)
    return sorted(items, key=lambda rs: (wl.revision(rs), rs["metadata"]["name"]))


def events(ctx: ClusterContext, reason: str | None = None) -> list[Obj]:
    """Events in creation order, optionally of one reason."""
    items, _ = ctx.store.list(EVENTS.key, NS)
    found = sorted(items, key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e for e in found if reason is None or e["reason"] == reason]


def messages(ctx: ClusterContext, reason: str) -> list[str]:
    """The messages of the events of one reason, in order."""
    return [e["message"] for e in events(ctx, reason)]


def rollout_status(d: Obj) -> tuple[bool, str]:
    """What ``kubectl rollout status`` decides and prints for a Deployment (rollout_status.go)."""
    name, status, spec = d["metadata"]["name"], d.get("status") or {}, d["spec"]
    if d["metadata"]["generation"] > status.get("observedGeneration", 0):
        return False, "Waiting for deployment spec update to be observed..."
    cond = wl.get_condition(status, "Progressing")
    if cond is not None and cond["reason"] == "ProgressDeadlineExceeded":
        raise AssertionError(f'deployment "{name}" exceeded its progress deadline')
    prefix = f'Waiting for deployment "{name}" rollout to finish: '
    updated, total = status.get("updatedReplicas", 0), status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < spec["replicas"]:
        return False, f"{prefix}{updated} out of {spec['replicas']} new replicas have been updated..."
    if total > updated:
        return False, f"{prefix}{total - updated} old replicas are pending termination..."
    if available < updated:
        return False, f"{prefix}{available} of {updated} updated replicas are available..."
    return True, f'deployment "{name}" successfully rolled out'


def rolled_out(ctx: ClusterContext, name: str = "web") -> bool:
    """``kubectl rollout status`` would finish now."""
    return rollout_status(get(ctx, DEPLOY, name))[0]


def set_image(ctx: ClusterContext, image: str, name: str = "web") -> None:
    """What ``kubectl set image`` changes."""
    ctx.registry.mutate(
        DEPLOY, NS, name, lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image=image)
    )


def pod_hashes(ctx: ClusterContext) -> set[str]:
    """The pod-template-hash labels of the pods that exist (terminating ones too)."""
    return {p["metadata"]["labels"].get(wl.HASH_LABEL, "") for p in pods(ctx)}


# -- pure helpers ----------------------------------------------------------------------------


def test_hash_is_fnv32a_safe_encoded_and_changes_with_collisions() -> None:
    assert wl.fnv32a(b"Hello world") == 1498229191  # the published FNV-1a test value
    assert wl.safe_encode("0123456789") == "456789bcdf"  # byte % 27 into the alphabet
    tpl = template()
    first = wl.template_hash(tpl)
    assert re.fullmatch(f"[{wl.SAFE_ALPHABET}]{{1,10}}", first)
    assert wl.template_hash(copy.deepcopy(tpl)) == first
    assert wl.template_hash(tpl, 1) != first
    assert wl.template_hash(template("nginx:1.26")) != first


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        (10, "25%", "25%", (3, 2)),  # surge rounds up, unavailable down
        (4, "25%", "25%", (1, 1)),
        (1, "25%", "25%", (1, 0)),
        (2, 0, "1%", (0, 1)),  # both resolve to 0: one may be unavailable
        (3, 2, 5, (2, 3)),  # never more unavailable than replicas
        (0, "25%", "25%", (0, 0)),
    ],
)
def test_fenceposts(replicas: int, surge: Any, unavailable: Any, expected: tuple[int, int]) -> None:
    d = {
        "spec": {
            "replicas": replicas,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
        }
    }
    assert wl.fenceposts(d) == expected
    assert wl.fenceposts({"spec": {"replicas": replicas, "strategy": {"type": "Recreate"}}}) == (0, 0)


def _pod(
    name: str,
    node: str = "w1",
    phase: str = "Running",
    ready: bool = True,
    restarts: int = 0,
    age: float = 60.0,
    ready_for: float = 30.0,
    cost: int | None = None,
) -> Obj:
    now = datetime.now(timezone.utc)
    status: Obj = {"phase": phase, "containerStatuses": [{"name": "c", "restartCount": restarts}]}
    if ready:
        status["conditions"] = [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": rfc3339(now - timedelta(seconds=ready_for)),
            }
        ]
    meta: Obj = {"name": name, "uid": name, "creationTimestamp": rfc3339(now - timedelta(seconds=age))}
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def test_surplus_pods_are_chosen_as_upstream_does() -> None:
    group = [
        _pod("old", age=3600),
        _pod("new", age=10),
        _pod("restarts", restarts=3),
        _pod("notready", ready=False),
        _pod("pending", phase="Pending", ready=False),
        _pod("unscheduled", node="", phase="Pending", ready=False),
    ]
    now = datetime.now(timezone.utc)
    order = [p["metadata"]["name"] for p in pods_to_delete(group, group, len(group), now)]
    assert order == ["unscheduled", "pending", "notready", "restarts", "new", "old"]
    assert [p["metadata"]["name"] for p in pods_to_delete(group, group, 2, now)] == ["unscheduled", "pending"]
    # more siblings on the same node go first; a lower deletion cost goes before that
    crowded = [_pod("a", node="w1"), _pod("b", node="w1"), _pod("alone", node="w2")]
    assert pods_to_delete(crowded[2:], crowded, 1, now)[0]["metadata"]["name"] == "alone"
    assert pods_to_delete(crowded, crowded, 1, now)[0]["metadata"]["name"] in ("a", "b")
    cheap = [*crowded[:2], _pod("cheap", node="w2", cost=-5)]
    assert pods_to_delete(cheap, cheap, 1, now)[0]["metadata"]["name"] == "cheap"
    # recently ready before long ready
    assert (
        pods_to_delete([_pod("long", ready_for=3600), _pod("short", ready_for=5)], [], 1, now)[0]["metadata"][
            "name"
        ]
        == "short"
    )


# -- the ReplicaSet controller ---------------------------------------------------------------


def test_replicaset_creates_owned_pods_and_reports_status(ctx: ClusterContext) -> None:
    rs = make_rs(ctx, replicas=3)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: get(ctx, RS, "web")["status"].get("availableReplicas") == 3)

    run(ctx, scenario)
    found = pods(ctx)
    assert len(found) == 3
    for pod in found:
        assert re.fullmatch(f"web-{SUFFIX}", pod["metadata"]["name"])
        assert pod["metadata"]["generateName"] == "web-"
        assert pod["metadata"]["labels"] == {"app": "web"}
        assert pod["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": rs["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert pod["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert get(ctx, RS, "web")["status"] == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "observedGeneration": 1,
    }
    created = events(ctx, "SuccessfulCreate")
    assert sorted(e["message"] for e in created) == sorted(
        f"Created pod: {p['metadata']['name']}" for p in found
    )
    assert {(e["involvedObject"]["kind"], e["source"]["component"], e["type"]) for e in created} == {
        ("ReplicaSet", "replicaset-controller", "Normal")
    }


def test_replicaset_scales_down_and_replaces_deleted_pods(ctx: ClusterContext) -> None:
    make_rs(ctx, replicas=3)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: get(ctx, RS, "web")["status"].get("readyReplicas") == 3)
        victim = pods(ctx)[0]["metadata"]["name"]
        ctx.registry.delete(PODS, NS, victim)
        await c.wait(
            lambda: (
                len(pods(ctx, live_only=True)) == 3
                and victim not in {p["metadata"]["name"] for p in pods(ctx)}
            )
        )
        failed = pods(ctx)[0]["metadata"]["name"]  # a finished pod no longer counts
        ctx.registry.mutate(
            PODS, NS, failed, lambda p: p["status"].update(phase="Failed"), subresource="status"
        )
        await c.wait(lambda: len(pods(ctx)) == 4 and get(ctx, RS, "web")["status"].get("readyReplicas") == 3)
        assert get(ctx, RS, "web")["status"]["replicas"] == 3
        ctx.registry.delete(PODS, NS, failed, {"gracePeriodSeconds": 0})
        ctx.registry.mutate(RS, NS, "web", lambda r: r["spec"].update(replicas=1))
        await c.wait(lambda: len(pods(ctx)) == 1 and get(ctx, RS, "web")["status"]["replicas"] == 1)
        assert get(ctx, RS, "web")["status"]["observedGeneration"] == 2

    run(ctx, scenario)
    deleted = messages(ctx, "SuccessfulDelete")
    assert len(deleted) == 2 and all(re.fullmatch(f"Deleted pod: web-{SUFFIX}", m) for m in deleted)
    assert len(events(ctx, "SuccessfulCreate")) == 5


def test_replicaset_adopts_orphans_and_releases_relabelled_pods(ctx: ClusterContext) -> None:
    ctx.registry.create(
        PODS, NS, {"metadata": {"name": "stray", "labels": {"app": "web"}}, "spec": template()["spec"]}
    )
    ctx.registry.create(
        PODS, NS, {"metadata": {"name": "other", "labels": {"app": "db"}}, "spec": template()["spec"]}
    )
    rs = make_rs(ctx, replicas=2)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: get(ctx, RS, "web")["status"].get("readyReplicas") == 2)
        assert wl.controller_of(get(ctx, PODS, "stray"))["uid"] == rs["metadata"]["uid"]
        assert "ownerReferences" not in get(ctx, PODS, "other")["metadata"]
        assert len(pods(ctx)) == 3  # the stray pod counts: only one was created
        ctx.registry.mutate(PODS, NS, "stray", lambda p: p["metadata"]["labels"].update(app="debug"))
        await c.wait(lambda: "ownerReferences" not in get(ctx, PODS, "stray")["metadata"])
        await c.wait(lambda: get(ctx, RS, "web")["status"].get("readyReplicas") == 2 and len(pods(ctx)) == 4)

    run(ctx, scenario)
    assert len(events(ctx, "SuccessfulCreate")) == 2


def test_replicaset_reports_failed_creates(ctx: ClusterContext, monkeypatch: pytest.MonkeyPatch) -> None:
    quota = (
        'pods "web-x" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1'
    )
    real_create = ctx.registry.create
    refusing = {"on": True}

    def create(rt: Any, namespace: Any, obj: Obj, **kw: Any) -> Obj:
        if rt is PODS and refusing["on"]:
            raise ApiError(403, quota, "Forbidden")
        return real_create(rt, namespace, obj, **kw)

    monkeypatch.setattr(ctx.registry, "create", create)
    make_rs(ctx, replicas=2)

    async def scenario(c: Cluster) -> None:
        failure = await c.wait(lambda: wl.get_condition(get(ctx, RS, "web").get("status"), "ReplicaFailure"))
        assert (failure["status"], failure["reason"], failure["message"]) == ("True", "FailedCreate", quota)
        assert messages(ctx, "FailedCreate")[0] == f"Error creating: {quota}"
        assert events(ctx, "FailedCreate")[0]["type"] == "Warning"
        refusing["on"] = False
        await c.wait(lambda: get(ctx, RS, "web")["status"].get("readyReplicas") == 2, timeout=10)
        await c.wait(lambda: "conditions" not in get(ctx, RS, "web")["status"])

    run(ctx, scenario)


def test_replicaset_honours_min_ready_seconds(ctx: ClusterContext) -> None:
    make_rs(ctx, replicas=2, minReadySeconds=2)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: get(ctx, RS, "web")["status"].get("readyReplicas") == 2)
        assert "availableReplicas" not in get(ctx, RS, "web")["status"]
        await c.wait(lambda: get(ctx, RS, "web")["status"].get("availableReplicas") == 2, timeout=5)

    run(ctx, scenario)


def test_replicaset_creates_a_thousand_pods_in_bursts(ctx: ClusterContext) -> None:
    make_rs(ctx, replicas=1000)
    kubelet = FakeKubelet(ctx)
    kubelet.ready = False

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: get(ctx, RS, "web")["status"].get("replicas") == 1000, timeout=60)

    run(ctx, scenario, kubelet)
    assert len(pods(ctx)) == 1000


# -- the Deployment controller ---------------------------------------------------------------


def test_deployment_creates_a_hash_named_replicaset_and_rolls_out(ctx: ClusterContext) -> None:
    d = make_deploy(ctx, replicas=3)
    lines: list[str] = []

    async def scenario(c: Cluster) -> None:
        c.on_write(lambda e: e.key == DEPLOY.key and lines.append(rollout_status(e.obj)[1]))
        await c.wait(lambda: rolled_out(ctx))

    run(ctx, scenario)
    pod_hash = wl.template_hash(d["spec"]["template"])
    (rs,) = sets(ctx)
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": pod_hash}}
    expected_template = copy.deepcopy(get(ctx, DEPLOY, "web")["spec"]["template"])
    expected_template["metadata"]["labels"]["pod-template-hash"] = pod_hash
    assert rs["spec"]["template"] == expected_template
    assert rs["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "uid": d["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert rs["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    assert all(p["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash} for p in pods(ctx))
    final = get(ctx, DEPLOY, "web")
    assert final["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    status = final["status"]
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
    }
    available, progressing = status["conditions"]
    assert (available["type"], available["status"], available["reason"], available["message"]) == (
        "Available",
        "True",
        "MinimumReplicasAvailable",
        "Deployment has minimum availability.",
    )
    assert (progressing["type"], progressing["status"], progressing["reason"], progressing["message"]) == (
        "Progressing",
        "True",
        "NewReplicaSetAvailable",
        f'ReplicaSet "web-{pod_hash}" has successfully progressed.',
    )
    for cond in status["conditions"]:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", cond["lastUpdateTime"])
        assert cond["lastTransitionTime"] <= cond["lastUpdateTime"]
    assert messages(ctx, "ScalingReplicaSet") == [f"Scaled up replica set web-{pod_hash} from 0 to 3"]
    assert events(ctx, "ScalingReplicaSet")[0]["source"]["component"] == "deployment-controller"
    # the progress kubectl shows on the way (which of them depends on how the writes coalesce)
    waiting = [line for line in lines if line.startswith('Waiting for deployment "web" rollout to finish: ')]
    assert waiting and set(waiting) <= {
        'Waiting for deployment "web" rollout to finish: 0 out of 3 new replicas have been updated...',
        'Waiting for deployment "web" rollout to finish: 0 of 3 updated replicas are available...',
        'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...',
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
    }, lines
    assert lines[-1] == 'deployment "web" successfully rolled out'


def test_rolling_update_never_drops_below_min_available(ctx: ClusterContext) -> None:
    make_deploy(ctx, replicas=4)  # 25% / 25%: at most 5 pods, at least 3 available
    seen: dict[str, Any] = {"min_available": 99, "max_pods": 0, "max_sets": 0, "watching": False, "lines": []}

    def check(event: Event) -> None:
        if not seen["watching"]:
            return
        live = pods(ctx, live_only=True)
        ready = [p for p in live if wl.is_ready(p)]
        seen["min_available"] = min(seen["min_available"], len(ready))
        seen["max_pods"] = max(seen["max_pods"], len(live))
        seen["max_sets"] = max(seen["max_sets"], sum(wl.replicas_of(rs) for rs in sets(ctx)))
        if event.key == DEPLOY.key:
            seen["lines"].append(rollout_status(event.obj)[1])

    async def scenario(c: Cluster) -> None:
        c.on_write(check)
        await c.wait(lambda: rolled_out(ctx))
        seen["watching"] = True
        set_image(ctx, "nginx:1.26")
        new_hash = wl.template_hash(get(ctx, DEPLOY, "web")["spec"]["template"])
        await c.wait(lambda: rolled_out(ctx) and pod_hashes(ctx) == {new_hash}, timeout=15)

    run(ctx, scenario, FakeKubelet(ctx, ready_after=0.05, stop_after=0.05))
    assert seen["min_available"] >= 3
    # the sets never ask for more than replicas + maxSurge; as upstream, pods may briefly exceed it
    # because each set's controller acts on its own (a new pod can come before an old one goes)
    assert seen["max_sets"] <= 5 and seen["max_pods"] <= 6
    old, new = sets(ctx)
    assert (wl.revision(old), wl.revision(new)) == (1, 2)
    assert (wl.replicas_of(old), wl.replicas_of(new)) == (0, 4)
    assert get(ctx, DEPLOY, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    scaling = messages(ctx, "ScalingReplicaSet")
    old_name, new_name = old["metadata"]["name"], new["metadata"]["name"]
    assert scaling[:3] == [
        f"Scaled up replica set {old_name} from 0 to 4",
        f"Scaled up replica set {new_name} from 0 to 1",
        f"Scaled down replica set {old_name} from 4 to 3",
    ]
    assert scaling[-1] in (
        f"Scaled down replica set {old_name} from 1 to 0",
        f"Scaled up replica set {new_name} from 3 to 4",
    )
    assert any("new replicas have been updated" in line for line in seen["lines"])
    assert seen["lines"][-1] == 'deployment "web" successfully rolled out'


def test_recreate_removes_old_pods_before_creating_new_ones(ctx: ClusterContext) -> None:
    make_deploy(ctx, replicas=3, strategy={"type": "Recreate"})
    seen: dict[str, Any] = {"old": "", "new": "", "overlap": False, "terminating": False}

    def check(event: Event) -> None:
        hashes = pod_hashes(ctx)
        if seen["new"] and seen["old"] in hashes and seen["new"] in hashes:
            seen["overlap"] = True
        seen["terminating"] |= any(p["metadata"].get("deletionTimestamp") for p in pods(ctx))

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: rolled_out(ctx))
        seen["old"] = wl.template_hash(get(ctx, DEPLOY, "web")["spec"]["template"])
        c.on_write(check)
        set_image(ctx, "nginx:1.26")
        seen["new"] = wl.template_hash(get(ctx, DEPLOY, "web")["spec"]["template"])
        await c.wait(lambda: rolled_out(ctx) and pod_hashes(ctx) == {seen["new"]}, timeout=15)

    run(ctx, scenario, FakeKubelet(ctx, stop_after=0.3))
    assert seen["terminating"] and not seen["overlap"]
    old, new = (rs["metadata"]["name"] for rs in sets(ctx))
    assert messages(ctx, "ScalingReplicaSet") == [
        f"Scaled up replica set {old} from 0 to 3",
        f"Scaled down replica set {old} from 3 to 0",
        f"Scaled up replica set {new} from 0 to 3",
    ]


def test_rollout_undo_reuses_the_old_replicaset_with_the_next_revision(ctx: ClusterContext) -> None:
    make_deploy(ctx, replicas=2)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: rolled_out(ctx))
        set_image(ctx, "nginx:1.26")
        await c.wait(lambda: rolled_out(ctx) and len(sets(ctx)) == 2 and len(pod_hashes(ctx)) == 1)
        # kubectl rollout undo: the previous revision's template (hash label removed) and its annotations
        first = next(rs for rs in sets(ctx) if wl.revision(rs) == 1)
        restored = copy.deepcopy(first["spec"]["template"])
        del restored["metadata"]["labels"]["pod-template-hash"]

        def undo(d: Obj) -> None:
            d["spec"]["template"] = restored
            keep = {k: v for k, v in d["metadata"]["annotations"].items() if k in wl.SKIPPED_ANNOTATIONS}
            d["metadata"]["annotations"] = keep

        ctx.registry.mutate(DEPLOY, NS, "web", undo)
        await c.wait(
            lambda: rolled_out(ctx) and pod_hashes(ctx) == {first["metadata"]["labels"]["pod-template-hash"]}
        )

    run(ctx, scenario)
    second, first = sets(ctx)  # by revision: the restored set is now the newest
    assert len(sets(ctx)) == 2  # no third set: the old one came back
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert first["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert wl.revision(second) == 2 and wl.replicas_of(first) == 2 and wl.replicas_of(second) == 0
    assert get(ctx, DEPLOY, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_scale_resizes_the_replicaset(ctx: ClusterContext) -> None:
    make_deploy(ctx, replicas=3)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: rolled_out(ctx))
        for replicas in (5, 1):
            ctx.registry.mutate(DEPLOY, NS, "web", lambda d, n=replicas: d["spec"].update(replicas=n))
            await c.wait(lambda n=replicas: rolled_out(ctx) and len(pods(ctx)) == n)

    run(ctx, scenario)
    (rs,) = sets(ctx)
    name = rs["metadata"]["name"]
    assert messages(ctx, "ScalingReplicaSet") == [
        f"Scaled up replica set {name} from 0 to 3",
        f"Scaled up replica set {name} from 3 to 5",
        f"Scaled down replica set {name} from 5 to 1",
    ]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "1"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "2"
    assert get(ctx, DEPLOY, "web")["status"]["observedGeneration"] == 3


def test_scaling_mid_rollout_is_proportional(ctx: ClusterContext) -> None:
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    make_deploy(ctx, replicas=10, strategy=rolling)
    kubelet = FakeKubelet(ctx)

    def sizes() -> list[int]:
        return [wl.replicas_of(rs) for rs in sets(ctx)]

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: rolled_out(ctx))
        kubelet.ready = False  # the new image never becomes ready: the rollout stalls
        set_image(ctx, "nginx:broken")
        await c.wait(lambda: sizes() == [8, 5])
        await asyncio.sleep(0.1)
        assert sizes() == [8, 5]
        ctx.registry.mutate(DEPLOY, NS, "web", lambda d: d["spec"].update(replicas=15))
        await c.wait(lambda: sizes() == [11, 7])  # 5 more: 3 to the old set, 2 to the new

    run(ctx, scenario, kubelet)
    old, new = (rs["metadata"]["name"] for rs in sets(ctx))
    assert messages(ctx, "ScalingReplicaSet")[-2:] == [
        f"Scaled up replica set {old} from 8 to 11",
        f"Scaled up replica set {new} from 5 to 7",
    ]
    assert all(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "18" for rs in sets(ctx)
    )


def test_paused_deployment_does_not_roll_out_until_resumed(ctx: ClusterContext) -> None:
    make_deploy(ctx, replicas=2)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: rolled_out(ctx))
        ctx.registry.mutate(DEPLOY, NS, "web", lambda d: d["spec"].update(paused=True))
        set_image(ctx, "nginx:1.26")
        await c.wait(lambda: get(ctx, DEPLOY, "web")["status"]["observedGeneration"] == 3)
        cond = wl.get_condition(get(ctx, DEPLOY, "web")["status"], "Progressing")
        assert (cond["status"], cond["reason"], cond["message"]) == (
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
        )
        await asyncio.sleep(0.2)
        assert len(sets(ctx)) == 1 and get(ctx, DEPLOY, "web")["status"].get("updatedReplicas", 0) == 0
        ctx.registry.mutate(DEPLOY, NS, "web", lambda d: d["spec"].update(paused=False))
        await c.wait(lambda: len(sets(ctx)) == 2 and rolled_out(ctx) and len(pod_hashes(ctx)) == 1)

    run(ctx, scenario)
    cond = wl.get_condition(get(ctx, DEPLOY, "web")["status"], "Progressing")
    assert (cond["status"], cond["reason"]) == ("True", "NewReplicaSetAvailable")


def test_progress_deadline_exceeded(ctx: ClusterContext) -> None:
    make_deploy(ctx, replicas=2, progressDeadlineSeconds=30)
    kubelet = FakeKubelet(ctx)
    kubelet.ready = False
    offset = {"seconds": 0.0}

    def clock() -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=offset["seconds"])

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: get(ctx, DEPLOY, "web")["status"].get("replicas") == 2)
        cond = wl.get_condition(get(ctx, DEPLOY, "web")["status"], "Progressing")
        assert cond["status"] == "True" and cond["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")
        offset["seconds"] = 60
        c.dc.queue.add((NS, "web"))
        await c.wait(
            lambda: (
                wl.get_condition(get(ctx, DEPLOY, "web")["status"], "Progressing")["reason"]
                == "ProgressDeadlineExceeded"
            )
        )

    run(ctx, scenario, kubelet, clock)
    status = get(ctx, DEPLOY, "web")["status"]
    rs_name = sets(ctx)[0]["metadata"]["name"]
    progressing = wl.get_condition(status, "Progressing")
    assert (progressing["status"], progressing["message"]) == (
        "False",
        f'ReplicaSet "{rs_name}" has timed out progressing.',
    )
    available = wl.get_condition(status, "Available")
    assert (available["status"], available["reason"], available["message"]) == (
        "False",
        "MinimumReplicasUnavailable",
        "Deployment does not have minimum availability.",
    )
    assert status["unavailableReplicas"] == 2
    with pytest.raises(AssertionError, match="exceeded its progress deadline"):
        rollout_status(get(ctx, DEPLOY, "web"))


def test_restarts_make_revisions_and_history_is_limited(ctx: ClusterContext) -> None:
    make_deploy(ctx, replicas=1, revisionHistoryLimit=1)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: rolled_out(ctx))
        for i in range(3):  # kubectl rollout restart: a new template annotation each time
            stamp = f"2026-01-0{i + 1}T00:00:00Z"
            ctx.registry.mutate(
                DEPLOY,
                NS,
                "web",
                lambda d, s=stamp: d["spec"]["template"]["metadata"].update(
                    annotations={"kubectl.kubernetes.io/restartedAt": s}
                ),
            )
            await c.wait(lambda: rolled_out(ctx) and len(pod_hashes(ctx)) == 1 and len(sets(ctx)) <= 2)

    run(ctx, scenario)
    assert sorted(wl.revision(rs) for rs in sets(ctx)) == [3, 4]
    assert get(ctx, DEPLOY, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"


def test_replicaset_create_failure_shows_on_the_deployment(
    ctx: ClusterContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusal = 'replicasets.apps "web-x" is forbidden: exceeded quota: sets'
    real_create = ctx.registry.create

    def create(rt: Any, namespace: Any, obj: Obj, **kw: Any) -> Obj:
        if rt is RS:
            raise ApiError(403, refusal, "Forbidden")
        return real_create(rt, namespace, obj, **kw)

    monkeypatch.setattr(ctx.registry, "create", create)
    d = make_deploy(ctx, replicas=1)
    name = f"web-{wl.template_hash(d['spec']['template'])}"

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: wl.get_condition(get(ctx, DEPLOY, "web").get("status"), "Progressing"))

    run(ctx, scenario)
    cond = wl.get_condition(get(ctx, DEPLOY, "web")["status"], "Progressing")
    message = f'Failed to create new replica set "{name}": {refusal}'
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "ReplicaSetCreateError", message)
    assert messages(ctx, "ReplicaSetCreateError")[0] == message
    assert events(ctx, "ReplicaSetCreateError")[0]["type"] == "Warning"
    assert sets(ctx) == []


def test_hash_collision_bumps_collision_count(ctx: ClusterContext) -> None:
    d_template = copy.deepcopy(template())
    probe = ctx.registry.create(
        DEPLOY,
        NS,
        {
            "metadata": {"name": "probe"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": d_template},
        },
    )
    taken = f"web-{wl.template_hash(probe['spec']['template'])}"
    ctx.registry.delete(DEPLOY, NS, "probe")
    squatter = {
        "metadata": {"name": taken},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "other"}},
            "template": template(labels={"app": "other"}),
        },
    }
    ctx.registry.create(RS, NS, squatter)
    make_deploy(ctx, replicas=1)

    async def scenario(c: Cluster) -> None:
        await c.wait(lambda: rolled_out(ctx))

    run(ctx, scenario)
    d = get(ctx, DEPLOY, "web")
    assert d["status"]["collisionCount"] == 1
    ours = [rs for rs in sets(ctx) if rs["metadata"]["name"] != taken]
    assert [rs["metadata"]["name"] for rs in ours] == [f"web-{wl.template_hash(d['spec']['template'], 1)}"]
    assert "ownerReferences" not in get(ctx, RS, taken)["metadata"]
