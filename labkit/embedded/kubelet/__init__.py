"""The node agent: runs the pods bound to a node as local processes (or simulates them).

:class:`Kubelet` is the agent; :func:`pod_address` tells where a pod's port really listens
(a container's ``PORT`` stands for its first containerPort).
"""

from labkit.embedded.kubelet.kubelet import Kubelet
from labkit.embedded.kubelet.network import PORTS_ANNOTATION, pod_address, pod_ports

__all__ = ["PORTS_ANNOTATION", "Kubelet", "pod_address", "pod_ports"]
