"""``labkit cluster ...`` and ``labkit node ...``: the embedded cluster's lifecycle, printed.

Each command calls :class:`~labkit.clusters.embedded.EmbeddedCluster`, the same object the
Lab's embedded backend drives, and only words the result.
"""

from __future__ import annotations

import argparse
import time

from labkit.clusters.embedded import DEFAULT_NAME, EmbeddedCluster, list_clusters
from labkit.errors import LabError


def _cluster(args: argparse.Namespace) -> EmbeddedCluster:
    return EmbeddedCluster(args.name)


def cmd_up(args: argparse.Namespace) -> int:
    """``labkit cluster up``."""
    cluster = _cluster(args)
    before = cluster.status()
    if before.state == "running":
        note = " (--nodes is ignored for a running cluster: stop it first to change it)" if args.nodes else ""
        print(
            f'Cluster "{cluster.name}" is already running on {before.server} (pid {before.pid}); '
            f"nothing changed{note}."
        )
        _print_usage(cluster)
        return 0
    verb = "Starting" if before.state == "stopped" else "Creating"
    print(f'{verb} cluster "{cluster.name}" ...', flush=True)
    start = time.monotonic()
    cluster.up(
        args.nodes,
        timeout=args.timeout,
        backoff_base=args.backoff_base,
        eviction_delay=args.eviction_delay,
        runtime=args.runtime,
    )
    status = cluster.status()
    print(f"✓ API server on {status.server} ({time.monotonic() - start:.1f} s)")
    print(f"✓ {len(status.nodes)} nodes: {', '.join(status.nodes)}")
    _print_usage(cluster)
    return 0


def _print_usage(cluster: EmbeddedCluster) -> None:
    name_flag = "" if cluster.name == DEFAULT_NAME else f" --name {cluster.name}"
    print(
        f"\nUse it with kubectl:\n  export KUBECONFIG={cluster.dir.kubeconfig}\n  kubectl get nodes\n"
        f"Stop it with: labkit cluster down{name_flag}"
    )


def cmd_down(args: argparse.Namespace) -> int:
    """``labkit cluster down``."""
    cluster = _cluster(args)
    existed = cluster.dir.exists()
    was_running = cluster.down(delete=args.delete)
    if args.delete:
        print(
            f'Cluster "{cluster.name}" '
            + (
                "stopped and deleted."
                if was_running
                else "deleted."
                if existed
                else "does not exist; nothing to delete."
            )
        )
    else:
        print(
            f'Cluster "{cluster.name}" '
            + (
                "stopped; its objects are kept for the next `labkit cluster up`."
                if was_running
                else "is not running; nothing to stop."
            )
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """``labkit cluster status``: exit 0 when running, 3 when stopped or absent."""
    status = _cluster(args).status()
    print(f"cluster:    {status.name}")
    print(f"state:      {status.state}")
    if status.state == "running":
        print(f"pid:        {status.pid}")
        print(f"server:     {status.server}")
        print(f"nodes:      {len(status.nodes)} ({', '.join(status.nodes)})")
        print(f"isolation:  {status.isolation or 'not reported yet'}")
    if status.state != "absent":
        print(f"kubeconfig: {status.kubeconfig}")
    else:
        print("start it with: labkit cluster up")
    return 0 if status.state == "running" else 3


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    """``labkit cluster kubeconfig``: print the kubeconfig (or its path)."""
    cluster = _cluster(args)
    if not cluster.dir.kubeconfig.exists():
        raise LabError(f'cluster "{cluster.name}" has no kubeconfig yet', "start it: labkit cluster up")
    print(
        cluster.dir.kubeconfig if args.path else cluster.dir.kubeconfig.read_text(),
        end="\n" if args.path else "",
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``labkit cluster list``."""
    names = list_clusters()
    if not names:
        print("No clusters. Create one with: labkit cluster up")
    for name in names:
        print(f"{name:20} {EmbeddedCluster(name).status().state}")
    return 0


def cmd_node(args: argparse.Namespace) -> int:
    """``labkit node stop|start NODE``."""
    cluster = _cluster(args)
    on = args.verb == "start"
    cluster.set_node_power(args.node, on)
    if on:
        print(f'Node "{args.node}" is running again and Ready; the scheduler can place pods on it.')
    else:
        delay = cluster.dir.load().eviction_delay
        print(
            f'Node "{args.node}" is stopped: its containers are gone. It turns NotReady in a few seconds, '
            f"and its pods are evicted {delay} s later and replaced on other nodes.\n"
            f"Watch it: kubectl get pods -o wide -w    Start it again: labkit node start {args.node}"
        )
    return 0
