"""The ``labkit`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from labkit import __version__
from labkit.clusters.embedded import DEFAULT_NAME, EmbeddedCluster, list_clusters
from labkit.errors import LabError, UsageError
from labkit.images import local as images
from labkit.images.models import BuildStep

EPILOG = """\
examples:
  labkit cluster up                 start the default 3-node cluster (or say it runs)
  labkit cluster up --nodes 5       a cluster of 5 nodes
  export KUBECONFIG=$(labkit cluster kubeconfig --path)
  kubectl get nodes
  labkit cluster down               stop it; objects are kept for the next up
  labkit cluster down --delete      stop it and delete its state
  labkit node stop labkit-worker    power a node off and watch its pods move
  labkit build -t posts:1.0 .       build an image from ./Dockerfile (no Docker needed)
  labkit image ls                   the images labkit built

State lives under $LABKIT_HOME (default ~/.labkit).
"""


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


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


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


def _print_step(step: BuildStep) -> None:
    """One line of build progress, in BuildKit's plain style."""
    head = f"#{step.number} [{step.stage} {step.number}/{step.total}]"
    if step.state == "start":
        print(f"{head} {step.instruction}", flush=True)
    elif step.state == "cached":
        print(f"{head} {step.instruction}\n#{step.number} CACHED", flush=True)
    elif step.state == "output":
        print(f"#{step.number} {step.output}", flush=True)
    elif step.state == "done":
        print(f"#{step.number} DONE {step.seconds:.1f}s", flush=True)
    else:
        print(f"#{step.number} ERROR (line {step.line})", flush=True)


def _build_args(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not name:
            raise UsageError(f"--build-arg {pair!r} has no name", "write --build-arg NAME=value")
        found[name] = value if eq else os.environ.get(name, "")
    return found


def cmd_build(args: argparse.Namespace) -> int:
    """``labkit build``: build an image with labkit's own builder, showing each step."""
    from labkit.images.embedded_builder import build

    result = build(
        Path(args.context),
        args.tag,
        dockerfile=args.file,
        build_args=_build_args(args.build_arg),
        target=args.target,
        no_cache=args.no_cache,
        progress=None if args.quiet else _print_step,
    )
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    cached = "all cached" if result.all_cached else f"{result.cache_hits} cached"
    print(
        f"Built {result.tag or result.id[7:19]} ({result.id[7:19]}, {_size(result.size)}) in "
        f"{result.seconds:.2f} s: {result.steps} steps, {cached}"
    )
    return 0


def _size(n: int) -> str:
    """A size as Docker prints it (decimal units)."""
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{value:.1f}GB"


def cmd_image_ls(args: argparse.Namespace) -> int:
    """``labkit image ls``."""
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for image in images.list_images():
        for name in image.tags or ("<none>:<none>",):
            repository, _, tag = name.rpartition(":")
            rows.append(
                (repository, tag, image.id[7:19], image.created[:19].replace("T", " "), _size(image.size))
            )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_image_inspect(args: argparse.Namespace) -> int:
    """``labkit image inspect``: the image's config as JSON."""
    print(json.dumps([images.inspect(ref) for ref in args.images], indent=2))
    return 0


def cmd_image_tag(args: argparse.Namespace) -> int:
    """``labkit image tag SOURCE TARGET``."""
    images.tag(args.source, args.target)
    return 0


def cmd_image_rm(args: argparse.Namespace) -> int:
    """``labkit image rm``."""
    for ref in args.images:
        for line in images.remove(ref, args.force):
            print(line)
    return 0


def cmd_image_export(args: argparse.Namespace) -> int:
    """``labkit image export``: an OCI image layout."""
    dest = images.export(args.image, Path(args.output), args.format)
    print(f"Wrote {args.image} as an OCI image layout ({args.format}) to {dest}")
    return 0


def _add_image_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    build = sub.add_parser(
        "build",
        help="build an image from a Dockerfile with labkit's own builder (no Docker needed)",
        description="Build an image into labkit's store; the embedded cluster runs it.",
    )
    build.add_argument("context", help="the build context folder (COPY paths are relative to it)")
    build.add_argument("-t", "--tag", required=True, help="name:version of the image, e.g. posts:1.0")
    build.add_argument("-f", "--file", default=None, help="the Dockerfile (default: CONTEXT/Dockerfile)")
    build.add_argument(
        "--build-arg", action="append", default=[], metavar="NAME=VALUE", help="set an ARG (repeatable)"
    )
    build.add_argument("--target", default=None, help="build this stage (default: the last)")
    build.add_argument("--no-cache", action="store_true", help="run every step again")
    build.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    build.set_defaults(func=cmd_build)

    image = sub.add_parser("image", help="list, inspect, tag, remove and export the images labkit built")
    verbs = image.add_subparsers(dest="verb", metavar="VERB")
    verbs.add_parser("ls", help="list images", description="list images").set_defaults(func=cmd_image_ls)
    inspect = verbs.add_parser("inspect", help="show images' config as JSON", description="inspect images")
    inspect.add_argument("images", nargs="+", metavar="IMAGE")
    inspect.set_defaults(func=cmd_image_inspect)
    tag = verbs.add_parser("tag", help="give an image another tag", description="tag an image")
    tag.add_argument("source", help="an image's tag or ID")
    tag.add_argument("target", help="the new name:version")
    tag.set_defaults(func=cmd_image_tag)
    rm = verbs.add_parser("rm", help="untag and delete images", description="remove images")
    rm.add_argument("images", nargs="+", metavar="IMAGE")
    rm.add_argument("-f", "--force", action="store_true", help="delete even with other tags or children")
    rm.set_defaults(func=cmd_image_rm)
    export = verbs.add_parser("export", help="write an image as an OCI image layout", description="export")
    export.add_argument("image")
    export.add_argument("-o", "--output", required=True, help="where to write it")
    export.add_argument(
        "--format", choices=("tar", "dir"), default="tar", help="a tar file (default) or a folder"
    )
    export.set_defaults(func=cmd_image_export)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``labkit`` command."""
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="labkit: learn Docker and Kubernetes hands-on.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    cluster = sub.add_parser(
        "cluster",
        help="manage embedded clusters",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = cluster.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, help_text: str, func: object) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--name", default=DEFAULT_NAME, help=f"cluster name (default: {DEFAULT_NAME})")
        p.set_defaults(func=func)
        return p

    up = verb("up", "start a cluster (create it on first use); returns once the API answers", cmd_up)
    up.add_argument("--nodes", type=int, default=None, help="number of nodes (default: 3, or as before)")
    up.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the API (default: 30)")
    up.add_argument(
        "--backoff-base",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="first crash-loop back-off, doubling up to 300 s (default: 10, as kubelet)",
    )
    up.add_argument(
        "--eviction-delay",
        type=int,
        default=None,
        metavar="SECONDS",
        help="how long pods stay on a NotReady node before eviction (default: 5; upstream 300)",
    )
    up.add_argument(
        "--runtime",
        choices=("process", "simulated"),
        default=None,
        help="run containers as local processes (default) or only simulate them (for scale)",
    )
    down = verb("down", "stop a cluster, keeping its objects", cmd_down)
    down.add_argument(
        "--delete", action="store_true", help="also delete its state (objects, kubeconfig, logs)"
    )
    verb("status", "show whether a cluster runs, where, and its nodes", cmd_status)
    kc = verb("kubeconfig", "print the cluster's kubeconfig", cmd_kubeconfig)
    kc.add_argument("--path", action="store_true", help="print the file's path instead of its content")
    lst = verbs.add_parser("list", help="list the clusters that have state", description="list clusters")
    lst.set_defaults(func=cmd_list)

    node = sub.add_parser("node", help="stop and start nodes of an embedded cluster")
    node_verbs = node.add_subparsers(dest="verb", metavar="VERB")
    for name, text in (
        ("stop", "power a node off: its containers die and its pods move to other nodes"),
        ("start", "power a stopped node on again; returns once it is Ready"),
    ):
        p = node_verbs.add_parser(name, help=text, description=text)
        p.add_argument("node", help="node name, e.g. labkit-worker")
        p.add_argument("--name", default=DEFAULT_NAME, help=f"cluster name (default: {DEFAULT_NAME})")
        p.set_defaults(func=cmd_node)
    _add_image_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``labkit`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    try:
        return int(args.func(args))
    except LabError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
