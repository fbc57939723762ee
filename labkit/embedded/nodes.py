"""The cluster's Node objects: names, labels, addresses, capacity and Ready status.

Nodes are named as in a kind multi-node cluster: ``<name>-control-plane``,
``<name>-worker``, ``<name>-worker2``, ... Each has a loopback InternalIP and a pod range
from the cluster's address block (:mod:`labkit.embedded.addresses`).
"""

from __future__ import annotations

import os
import platform
from typing import Any

from labkit.embedded import addresses
from labkit.shared.timeutil import rfc3339

KUBELET_VERSION = "v1.32.0-labkit"
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node_names(cluster: str, count: int) -> list[str]:
    """Node names for a cluster of ``count`` nodes, the first being the control plane."""
    names = [f"{cluster}-control-plane"]
    for i in range(1, count):
        names.append(f"{cluster}-worker" if i == 1 else f"{cluster}-worker{i}")
    return names


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def _memory_ki() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 8 * 1024 * 1024


def _os_image() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"


def node_ip(index: int) -> str:
    """The loopback InternalIP of node ``index``."""
    return addresses.current().node_ip(index)


def ready_conditions(
    ready: bool = True, message: str = "kubelet is posting ready status"
) -> list[dict[str, Any]]:
    """The node conditions kubelet reports, Ready or not."""
    now = rfc3339()

    def condition(kind: str, status: str, reason: str, text: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": text,
        }

    return [
        condition(
            "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
        ),
        condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        condition(
            "Ready",
            "True" if ready else "Unknown",
            "KubeletReady" if ready else "NodeStatusUnknown",
            message if ready else "Kubelet stopped posting node status.",
        ),
    ]


def node_object(name: str, index: int, tainted_control_plane: bool) -> dict[str, Any]:
    """A Ready Node as ``kubectl describe node`` expects to see it."""
    control_plane = index == 0
    labels = {
        "beta.kubernetes.io/arch": _arch(),
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": _arch(),
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    cpu = str(os.cpu_count() or 1)
    memory = f"{_memory_ki()}Ki"
    resources = {
        "cpu": cpu,
        "memory": memory,
        "pods": "110",
        "ephemeral-storage": "100Gi",
        "hugepages-2Mi": "0",
    }
    spec: dict[str, Any] = {
        "podCIDR": addresses.current().pod_cidr(index),
        "podCIDRs": [addresses.current().pod_cidr(index)],
        "providerID": f"labkit://{name}",
    }
    if control_plane and tainted_control_plane:
        spec["taints"] = [dict(CONTROL_PLANE_TAINT)]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": dict(resources),
            "conditions": ready_conditions(),
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": name,
                "systemUUID": name,
                "bootID": name,
                "kernelVersion": platform.release(),
                "osImage": _os_image(),
                "containerRuntimeVersion": "labkit://0.1.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": _arch(),
            },
        },
    }
