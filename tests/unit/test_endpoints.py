"""The endpoints controller, in-process: Endpoints and EndpointSlices follow the pods a Service selects.

Pods are written straight through the registry (bound, given an IP and made Ready or not, as
a kubelet would); the controller runs in the test's event loop and must catch up within a
second of each change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from labkit.embedded.context import ClusterContext
from labkit.embedded.controllers.endpoints import EndpointsController, find_port
from labkit.embedded.resources import lookup
from labkit.shared.timeutil import rfc3339
from tests.unit.support import eventually

PODS = lookup("", "v1", "pods")
SERVICES = lookup("", "v1", "services")
ENDPOINTS = lookup("", "v1", "endpoints")
SLICES = lookup("discovery.k8s.io", "v1", "endpointslices")
assert PODS and SERVICES and ENDPOINTS and SLICES

Obj = dict[str, Any]
NS = "default"


@pytest.fixture
def ctx(make_ctx: Callable[..., ClusterContext]) -> ClusterContext:
    """A bootstrapped 2-node cluster store, the API server said to be on port 6443."""
    return make_ctx(2, port=6443)


def run(ctx: ClusterContext, scenario: Callable[[EndpointsController], Awaitable[None]]) -> None:
    """Run ``scenario`` with the controller started."""

    async def main() -> None:
        controller = EndpointsController(ctx)
        ctx.store.add_listener(controller.notify)
        controller.start()
        try:
            await scenario(controller)
        finally:
            await controller.stop()

    asyncio.run(main())


def service(ctx: ClusterContext, name: str = "web", **spec: Any) -> Obj:
    """Create a Service selecting app=web on port 80 → 8080 unless told otherwise."""
    body = {
        "metadata": {"name": name, "labels": {"team": "blue"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}], **spec},
    }
    return ctx.registry.create(SERVICES, NS, body)


def pod(
    ctx: ClusterContext,
    name: str,
    ip: str | None,
    ready: bool = True,
    node: str = "lab-worker",
    labels: Obj | None = None,
    ports: list[Obj] | None = None,
) -> Obj:
    """Create a pod bound to ``node``, Running with ``ip``, Ready or not."""
    body = {
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": "labkit/echo:1",
                    "ports": ports or [{"name": "http", "containerPort": 8080}],
                }
            ],
        },
    }
    ctx.registry.create(PODS, NS, body)
    return set_status(ctx, name, ip, ready)


def set_status(ctx: ClusterContext, name: str, ip: str | None, ready: bool, phase: str = "Running") -> Obj:
    """Write the pod's status as its kubelet would."""

    def change(p: Obj) -> None:
        flag = "True" if ready else "False"
        p["status"].update(
            phase=phase,
            conditions=[{"type": "Ready", "status": flag, "lastTransitionTime": rfc3339()}],
        )
        if ip:
            p["status"].update(podIP=ip, podIPs=[{"ip": ip}])

    return ctx.registry.mutate(PODS, NS, name, change, subresource="status")


def endpoints(ctx: ClusterContext, name: str = "web") -> Obj | None:
    """The stored Endpoints of a Service."""
    return ctx.store.find(ENDPOINTS.key, NS, name)


def slices(ctx: ClusterContext, name: str = "web") -> list[Obj]:
    """The stored EndpointSlices of a Service."""
    items, _ = ctx.store.list(SLICES.key, NS)
    return [s for s in items if s["metadata"]["labels"].get("kubernetes.io/service-name") == name]


def ready_ips(ctx: ClusterContext, name: str = "web") -> list[str]:
    """The ready addresses of the Service's Endpoints."""
    ep = endpoints(ctx, name) or {}
    return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]


def not_ready_ips(ctx: ClusterContext, name: str = "web") -> list[str]:
    """The not-ready addresses."""
    ep = endpoints(ctx, name) or {}
    return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses") or []]


def slice_conditions(ctx: ClusterContext, name: str = "web") -> dict[str, Obj]:
    """Each slice endpoint's conditions by pod name."""
    return {
        e["targetRef"]["name"]: e["conditions"] for s in slices(ctx, name) for e in s.get("endpoints") or []
    }


# -- what a real cluster shows ------------------------------------------------------------------


def test_endpoints_list_ready_pods_with_references_and_ports(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        svc = service(ctx)
        a = pod(ctx, "web-a", "127.244.1.3")
        pod(ctx, "web-b", "127.244.2.2", node="lab-worker2")
        pod(ctx, "web-c", "127.244.1.4", ready=False)
        pod(ctx, "other", "127.244.1.9", labels={"app": "other"})
        await eventually(lambda: len(ready_ips(ctx)) == 2 and not_ready_ips(ctx))
        ep = endpoints(ctx)
        assert ep is not None
        assert ep["metadata"]["labels"] == {"team": "blue"}
        assert ep["subsets"] == [
            {
                "addresses": [
                    {
                        "ip": "127.244.1.3",
                        "nodeName": "lab-worker",
                        "targetRef": {
                            "kind": "Pod",
                            "namespace": NS,
                            "name": "web-a",
                            "uid": a["metadata"]["uid"],
                        },
                    },
                    {
                        "ip": "127.244.2.2",
                        "nodeName": "lab-worker2",
                        "targetRef": {
                            "kind": "Pod",
                            "namespace": NS,
                            "name": "web-b",
                            "uid": ctx.registry.get(PODS, NS, "web-b")["metadata"]["uid"],
                        },
                    },
                ],
                "notReadyAddresses": [
                    {
                        "ip": "127.244.1.4",
                        "nodeName": "lab-worker",
                        "targetRef": {
                            "kind": "Pod",
                            "namespace": NS,
                            "name": "web-c",
                            "uid": ctx.registry.get(PODS, NS, "web-c")["metadata"]["uid"],
                        },
                    }
                ],
                "ports": [{"port": 8080, "protocol": "TCP"}],
            }
        ]
        (only,) = slices(ctx)
        assert only["metadata"]["name"].startswith("web-")
        assert only["metadata"]["labels"] == {
            "team": "blue",
            "kubernetes.io/service-name": "web",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        }
        assert only["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "name": "web",
                "uid": svc["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert only["addressType"] == "IPv4"
        assert only["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
        assert [e["addresses"] for e in only["endpoints"]] == [
            ["127.244.1.3"],
            ["127.244.1.4"],
            ["127.244.2.2"],
        ]
        assert only["endpoints"][0]["nodeName"] == "lab-worker"
        assert slice_conditions(ctx)["web-c"] == {"ready": False, "serving": False, "terminating": False}

    run(ctx, scenario)


def test_readiness_changes_move_a_pod_within_a_second(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx)
        pod(ctx, "web-a", "127.244.1.3")
        pod(ctx, "web-b", "127.244.1.4")
        await eventually(lambda: ready_ips(ctx) == ["127.244.1.3", "127.244.1.4"])
        set_status(ctx, "web-b", "127.244.1.4", ready=False)
        await eventually(lambda: ready_ips(ctx) == ["127.244.1.3"] and not_ready_ips(ctx) == ["127.244.1.4"])
        assert slice_conditions(ctx)["web-b"] == {"ready": False, "serving": False, "terminating": False}
        set_status(ctx, "web-b", "127.244.1.4", ready=True)
        await eventually(lambda: ready_ips(ctx) == ["127.244.1.3", "127.244.1.4"] and not not_ready_ips(ctx))

    run(ctx, scenario)


def test_a_deleted_pod_leaves_at_once_and_its_slice_entry_says_terminating(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx)
        pod(ctx, "web-a", "127.244.1.3")
        pod(ctx, "web-b", "127.244.1.4")
        await eventually(lambda: len(ready_ips(ctx)) == 2)
        ctx.registry.delete(PODS, NS, "web-b")  # graceful: it stays, terminating, until its kubelet ends it
        assert ctx.store.find(PODS.key, NS, "web-b") is not None
        await eventually(lambda: ready_ips(ctx) == ["127.244.1.3"] and not not_ready_ips(ctx))
        assert slice_conditions(ctx)["web-b"] == {"ready": False, "serving": True, "terminating": True}
        ctx.registry.finish_deletion(PODS, NS, "web-b")
        await eventually(lambda: set(slice_conditions(ctx)) == {"web-a"})

    run(ctx, scenario)


def test_pods_without_an_ip_or_finished_are_no_endpoints(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx)
        pod(ctx, "web-a", "127.244.1.3")
        pod(ctx, "starting", None, ready=False)
        pod(ctx, "done", "127.244.1.5")
        set_status(ctx, "done", "127.244.1.5", ready=False, phase="Succeeded")
        await eventually(lambda: ready_ips(ctx) == ["127.244.1.3"])
        await asyncio.sleep(0.05)
        assert not not_ready_ips(ctx)
        assert set(slice_conditions(ctx)) == {"web-a"}

    run(ctx, scenario)


def test_relabelled_pod_leaves_the_service(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx)
        pod(ctx, "web-a", "127.244.1.3")
        pod(ctx, "web-b", "127.244.1.4")
        await eventually(lambda: len(ready_ips(ctx)) == 2)
        ctx.registry.mutate(PODS, NS, "web-b", lambda p: p["metadata"].update(labels={"app": "debug"}))
        await eventually(lambda: ready_ips(ctx) == ["127.244.1.3"])

    run(ctx, scenario)


# -- ports --------------------------------------------------------------------------------------


def test_named_target_port_is_resolved_per_pod(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx, ports=[{"name": "web", "port": 80, "targetPort": "http"}])
        pod(ctx, "old", "127.244.1.3", ports=[{"name": "http", "containerPort": 8080}])
        pod(ctx, "new", "127.244.1.4", ports=[{"name": "http", "containerPort": 9090}])
        pod(ctx, "portless", "127.244.1.5", ports=[{"name": "metrics", "containerPort": 9100}])
        await eventually(lambda: len(ready_ips(ctx)) == 2)
        subsets = endpoints(ctx)["subsets"]  # type: ignore[index]
        by_port = {s["ports"][0]["port"]: [a["ip"] for a in s["addresses"]] for s in subsets}
        assert by_port == {8080: ["127.244.1.3"], 9090: ["127.244.1.4"]}
        assert all(s["ports"][0]["name"] == "web" for s in subsets)
        assert sorted(s["ports"][0]["port"] for s in slices(ctx)) == [8080, 9090]

    run(ctx, scenario)


def test_find_port_matches_name_and_protocol() -> None:
    pod_obj = {
        "spec": {
            "containers": [
                {"name": "a", "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"}]},
                {"name": "b", "ports": [{"name": "dns", "containerPort": 5353}]},
            ]
        }
    }
    assert find_port(pod_obj, {"port": 53, "targetPort": "dns", "protocol": "TCP"}) == 5353
    assert find_port(pod_obj, {"port": 53, "targetPort": "dns", "protocol": "UDP"}) == 53
    assert find_port(pod_obj, {"port": 53, "targetPort": "nope"}) is None
    assert find_port(pod_obj, {"port": 80, "targetPort": 8080}) == 8080


def test_publish_not_ready_addresses_lists_every_pod_as_ready(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx, publishNotReadyAddresses=True, clusterIP="None")
        pod(ctx, "web-a", "127.244.1.3", ready=False)
        await eventually(lambda: ready_ips(ctx) == ["127.244.1.3"])
        assert not not_ready_ips(ctx)
        assert endpoints(ctx)["metadata"]["labels"]["service.kubernetes.io/headless"] == ""  # type: ignore[index]
        assert slice_conditions(ctx)["web-a"] == {"ready": True, "serving": False, "terminating": False}

    run(ctx, scenario)


# -- whose Endpoints ----------------------------------------------------------------------------


def test_a_service_without_selector_keeps_its_hand_written_endpoints(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        ctx.registry.create(SERVICES, NS, {"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}})
        manual = {
            "metadata": {"name": "db"},
            "subsets": [{"addresses": [{"ip": "127.244.9.9"}], "ports": [{"port": 15432}]}],
        }
        ctx.registry.create(ENDPOINTS, NS, manual)
        pod(ctx, "web-a", "127.244.1.3")
        await asyncio.sleep(0.1)
        assert endpoints(ctx, "db")["subsets"] == [  # type: ignore[index]
            {"addresses": [{"ip": "127.244.9.9"}], "ports": [{"port": 15432, "protocol": "TCP"}]}
        ]
        assert slices(ctx, "db") == []

    run(ctx, scenario)


def test_no_matching_pod_gives_empty_endpoints_and_a_placeholder_slice(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx, selector={"app": "nothing"})
        await eventually(lambda: endpoints(ctx) and slices(ctx))
        assert "subsets" not in endpoints(ctx)  # type: ignore[operator]
        (placeholder,) = slices(ctx)
        assert placeholder["endpoints"] == [] and placeholder["ports"] == []

    run(ctx, scenario)


def test_deleting_the_service_deletes_its_endpoints(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx)
        pod(ctx, "web-a", "127.244.1.3")
        await eventually(lambda: ready_ips(ctx))
        ctx.registry.delete(SERVICES, NS, "web")
        await eventually(lambda: endpoints(ctx) is None)

    run(ctx, scenario)


def test_a_hand_edited_endpoints_object_is_put_back(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        service(ctx)
        pod(ctx, "web-a", "127.244.1.3")
        await eventually(lambda: ready_ips(ctx))
        ctx.registry.mutate(ENDPOINTS, NS, "web", lambda ep: ep.update(subsets=[]))
        await eventually(lambda: ready_ips(ctx) == ["127.244.1.3"])

    run(ctx, scenario)


def test_the_kubernetes_service_points_at_the_api_server(ctx: ClusterContext) -> None:
    async def scenario(_: EndpointsController) -> None:
        ep = await eventually(lambda: endpoints(ctx, "kubernetes"))
        assert ep["subsets"] == [
            {
                "addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
            }
        ]

    run(ctx, scenario)
