"""The ``labkit`` command line: its parser and ``main``; the commands are in
:mod:`~labkit.cli.cluster_commands` and :mod:`~labkit.cli.image_commands`."""

from __future__ import annotations

import argparse
import sys

from labkit import __version__
from labkit.cli.cluster_commands import cmd_down, cmd_kubeconfig, cmd_list, cmd_node, cmd_status, cmd_up
from labkit.cli.demo_command import add_demo_command
from labkit.cli.image_commands import (
    cmd_build,
    cmd_image_export,
    cmd_image_inspect,
    cmd_image_ls,
    cmd_image_rm,
    cmd_image_tag,
)
from labkit.cli.lab_command import add_lab_command
from labkit.clusters.embedded import DEFAULT_NAME
from labkit.errors import LabError

EPILOG = """\
examples:
  labkit lab                        the cluster and JupyterLab on the tutorials (notebooks/)
  labkit demo                       the workshop's core in a terminal (build, deploy, traffic)
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


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


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
    add_lab_command(sub)
    add_demo_command(sub)
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
