"""What a new (or restarted) cluster holds before anyone uses it.

System namespaces, the ``kubernetes`` Service, and one Ready Node (with its Lease) per
configured node. Running it again on a restarted cluster changes only what differs.
"""

from __future__ import annotations

from typing import Any

from labkit.embedded import addresses
from labkit.embedded import nodes as node_objects
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.events import EventRecorder
from labkit.embedded.resources import lookup
from labkit.shared.timeutil import rfc3339

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NAMESPACES = lookup("", "v1", "namespaces")
NODES = lookup("", "v1", "nodes")
LEASES = lookup("coordination.k8s.io", "v1", "leases")
SERVICES = lookup("", "v1", "services")


def bootstrap(registry: Registry, cluster: str, node_count: int) -> None:
    """Bring the system objects and the nodes to what the configuration says. Existing nodes
    are left to their kubelets, which report their status once they run."""
    assert NAMESPACES and NODES and LEASES and SERVICES
    store = registry.store
    for name in SYSTEM_NAMESPACES:
        if store.find(NAMESPACES.key, "", name) is None:
            registry.create(NAMESPACES, None, {"metadata": {"name": name}})
    if store.find(SERVICES.key, "default", "kubernetes") is None:
        registry.create(
            SERVICES,
            "default",
            {
                "metadata": {
                    "name": "kubernetes",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": addresses.current().kubernetes_ip,
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                },
            },
        )
    wanted = node_objects.node_names(cluster, node_count)
    existing, _ = store.list(NODES.key)
    for node in list(existing):
        if node["metadata"]["name"] not in wanted and node.get("spec", {}).get("providerID", "").startswith(
            "labkit"
        ):
            registry.delete(NODES, None, node["metadata"]["name"])
    recorder = EventRecorder(registry, "kubelet")
    for index, name in enumerate(wanted):
        current = store.find(NODES.key, "", name)
        if current is None:
            node = registry.create(NODES, None, node_objects.node_object(name, index, node_count > 1))
            recorder.record(node, "Normal", "Starting", "Starting kubelet.", host=name)
            recorder.record(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady", host=name)
            EventRecorder(registry, "node-controller").record(
                node, "Normal", "RegisteredNode", f"Node {name} event: Registered Node {name} in Controller"
            )
        _renew_lease(registry, name)


def _renew_lease(registry: Registry, node: str) -> None:
    assert LEASES
    spec = {
        "holderIdentity": node,
        "leaseDurationSeconds": 40,
        "renewTime": rfc3339().replace("Z", ".000000Z"),
    }
    if registry.store.find(LEASES.key, "kube-node-lease", node) is None:
        registry.create(LEASES, "kube-node-lease", {"metadata": {"name": node}, "spec": spec})
    else:

        def change(lease: dict[str, Any]) -> None:
            lease["spec"] = spec

        registry.mutate(LEASES, "kube-node-lease", node, change)
