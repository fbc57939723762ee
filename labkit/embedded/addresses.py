"""The loopback addresses of one embedded cluster: its block of node, pod, Service and
LoadBalancer addresses.

Clusters that run at once on one machine (a learner's and the test suite's, two homes, two
users) each take a block of their own, so that two never hand out the same pod IP or
ClusterIP. Block ``b`` (0 to ``BLOCKS - 1``) has:

- nodes at ``127.18.b.2``, ``127.18.b.3``, ... (kind's nodes sit on 172.18.0.0/16);
- pods in ``127.(244+b).<node>.0/24``, one /24 per node;
- Services in ``127.96.(32b).0/19``, the ``kubernetes`` Service at ``127.96.(32b).1``;
- LoadBalancer ingress addresses in ``127.100.(32b).0/19``.

Block 0 is the first cluster's, with the addresses clusters had before blocks existed.

A running daemon holds its block with a UDP socket bound at ``127.18.b.1:CLAIM_PORT`` (bound,
never sent to), so the kernel itself says whether a block is taken, whoever took it. A
cluster keeps its block for life (its objects carry its addresses); clusters made before
blocks existed have block 0. The daemon is one cluster, so the block in use is process-wide:
:func:`use` sets it once at start, and everything asks :func:`current`.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

BLOCKS = 8
CLAIM_PORT = 33433


class AddressesInUseError(Exception):
    """The cluster's address block is held by another running cluster, or none is free."""


@dataclass(frozen=True)
class Block:
    """One cluster's address block."""

    index: int = 0

    def node_ip(self, node: int) -> str:
        """The InternalIP of node number ``node`` (0 is the control plane)."""
        return f"127.18.{self.index}.{node + 2}"

    def pod_cidr(self, node: int) -> str:
        """The pod range of node number ``node``."""
        return f"127.{244 + self.index}.{node}.0/24"

    @property
    def service_range(self) -> ipaddress.IPv4Network:
        """Where ClusterIPs come from."""
        return ipaddress.IPv4Network(f"127.96.{32 * self.index}.0/19")

    @property
    def load_balancer_range(self) -> ipaddress.IPv4Network:
        """Where LoadBalancer ingress addresses come from."""
        return ipaddress.IPv4Network(f"127.100.{32 * self.index}.0/19")

    @property
    def kubernetes_ip(self) -> str:
        """The ClusterIP of ``default/kubernetes``, where pods reach the API server."""
        return str(self.service_range.network_address + 1)

    @property
    def nets(self) -> tuple[str, ...]:
        """Every range of the block: what a pod may connect to besides its own addresses."""
        return (
            f"127.{244 + self.index}.0.0/16",
            str(self.service_range),
            str(self.load_balancer_range),
            f"127.18.{self.index}.0/24",
        )

    def describe(self) -> str:
        """The ranges, for messages."""
        pods, services, _, nodes = self.nets
        return f"pods {pods}, Services {services}, nodes {nodes}"


_current = Block(0)


def current() -> Block:
    """The block of the cluster this process runs (block 0 until :func:`use`)."""
    return _current


def use(block: Block) -> None:
    """Make ``block`` the one this process's cluster uses."""
    global _current
    _current = block


def claim(saved: int | None) -> tuple[Block, socket.socket]:
    """Hold the block ``saved`` (a cluster's own), or for a new cluster (``None``) the first
    free one; the block and the socket that holds it (keep it open while the cluster runs)."""
    wanted = [saved] if saved is not None else list(range(BLOCKS))
    for index in wanted:
        if not 0 <= index < BLOCKS:
            raise AddressesInUseError(f"address block {index} is not one of 0-{BLOCKS - 1}")
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            holder.bind((f"127.18.{index}.1", CLAIM_PORT))
        except OSError as e:
            holder.close()
            if e.errno != errno.EADDRINUSE:
                raise AddressesInUseError(f"cannot hold address block {index}: {e}") from e
            continue
        holder.set_inheritable(False)
        return Block(index), holder
    if saved is not None:
        raise AddressesInUseError(
            f"this cluster's addresses ({Block(saved).describe()}) are in use by another embedded "
            "cluster running on this machine; stop that one (labkit cluster down --name NAME, with its "
            "LABKIT_HOME) and start this one again"
        )
    raise AddressesInUseError(
        f"{BLOCKS} embedded clusters already run on this machine, each with its own addresses; "
        "stop one (labkit cluster down --name NAME) and try again"
    )
