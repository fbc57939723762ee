"""Changing nodes the way a lesson does: cordon, uncordon and drain (evicting pods)."""

from __future__ import annotations

import time

from labkit.errors import ClusterError
from labkit.kube.http import Api, expect_ok
from labkit.kube.poll import poll_until


def set_unschedulable(api: Api, node: str, on: bool) -> None:
    """Cordon (``on``) or uncordon a node."""
    status, body = api.request(
        "PATCH", f"/api/v1/nodes/{node}", {"spec": {"unschedulable": on or None}},
        content_type="application/merge-patch+json",
    )  # fmt: skip
    expect_ok(status, body, f'node "{node}"')


def drain(api: Api, node: str, timeout: float) -> list[str]:
    """Cordon a node and evict its pods (not DaemonSet or mirror pods), as ``kubectl drain``;
    returns once they are gone, with the ``namespace/name`` of each evicted pod."""
    set_unschedulable(api, node, True)
    status, listed = api.request("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={node}"})
    expect_ok(status, listed, f'the pods on node "{node}"')
    evicted: list[str] = []
    for pod in listed.get("items", []):
        meta = pod["metadata"]
        owners = {o.get("kind") for o in meta.get("ownerReferences") or []}
        if "DaemonSet" in owners or "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            continue
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}  # fmt: skip
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        status, body = api.request("POST", path + "/eviction", eviction)
        expect_ok(status, body, f'pod "{meta["name"]}"', meta["namespace"])
        evicted.append(f"{meta['namespace']}/{meta['name']}")
    deadline = time.monotonic() + timeout  # one deadline for all of them
    for ref in evicted:
        namespace, name = ref.split("/", 1)
        poll_until(
            lambda ns=namespace, n=name: api.request("GET", f"/api/v1/namespaces/{ns}/pods/{n}")[0] == 404,
            deadline=deadline,
            on_timeout=lambda n=name: ClusterError(
                f"pod {n} was not gone {timeout:g} s after draining {node}", "it may have finalizers"
            ),
        )
    return evicted
