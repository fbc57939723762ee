"""What each magic accepts, declared with IPython's ``magic_arguments``.

Each spec below is a stub whose decorators describe a magic's options; ``%dockerfile?`` and
friends show its generated help. :func:`parse` reads a magic's line against a spec. A bad line
becomes IPython's :class:`~IPython.core.error.UsageError`, which IPython prints as the message
and the usage, with no traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring


def _seconds(text: str) -> float:
    """A positive number of seconds, for ``--timeout``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _port(text: str) -> int:
    """A TCP port, 1 to 65535, for ``--port``."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1 to 65535)")
    return int(text)


def _build_arg(text: str) -> tuple[str, str]:
    """``NAME=value`` for ``--build-arg``."""
    name, eq, value = text.partition("=")
    if not name or not eq:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=value")
    return name, value


@magic_arguments("%dockerfile")
@argument("tag", help="the image's name and tag, e.g. posts:0.0.1")
@argument("--context", metavar="DIR", default=None, help="the build context folder (default: none)")
@argument(
    "--build-arg",
    metavar="K=V",
    dest="build_args",
    action="append",
    type=_build_arg,
    default=[],
    help="set a build argument (repeatable)",
)
@argument("--no-cache", action="store_true", help="run every step, using no cached layer")
@argument("--run", action="store_true", help="run the image once after it is built")
@argument(
    "--port", metavar="N", type=_port, default=None, help="with --run: the port the container listens on"
)
def dockerfile(line: str, cell: str) -> None:
    """Build the cell as a Dockerfile, showing each step, and print a one-line summary."""


@magic_arguments("%k8s")
@argument(
    "action",
    nargs="?",
    default="apply",
    choices=("apply", "delete", "diff"),
    help="what to do with the manifests in the cell (default: apply)",
)
@argument("-n", "--namespace", metavar="NS", default=None, help="the namespace (default: the Lab's)")
@argument("--no-wait", action="store_true", help="do not wait for rollouts to become ready")
@argument(
    "--timeout",
    metavar="S",
    type=_seconds,
    default=None,
    help="seconds to wait for readiness (default: Lab.timeout)",
)
def k8s(line: str, cell: str) -> None:
    """Apply, delete or diff the Kubernetes manifests in the cell; ``{var}`` expands from the notebook."""


@magic_arguments("lab")
@argument(
    "command",
    nargs="?",
    choices=("connect", "use", "reset"),
    help="connect TARGET | use NAMESPACE | reset; with none, show the status",
)
@argument("value", nargs="?", help="the target (embedded, kind, kubeconfig) or the namespace")
@argument("--context", default=None, help="with connect: the kubeconfig context to use")
def lab(line: str) -> None:
    """Show the Lab's status, or connect it to a cluster, switch its namespace, or reset it."""


def usage(spec: Callable[..., Any]) -> str:
    """The usage of a spec on one line, e.g. ``usage: %%k8s [-n NAMESPACE] ...`` (IPython's
    help formatter adds the leading ``%`` and wraps the usage as reStructuredText)."""
    text = spec.parser.format_usage()  # type: ignore[attr-defined]
    return "usage: " + " ".join(text.replace("::", " ").split())


def parse(spec: Callable[..., Any], line: str) -> argparse.Namespace:
    """Read a magic's line; a bad line raises UsageError with the message and the usage."""
    try:
        return parse_argstring(spec, line)
    except UsageError as e:
        raise UsageError(f"{e}\n{usage(spec)}") from None
    except ValueError as e:  # unbalanced quotes, from shlex
        raise UsageError(f"cannot read the options: {e}\n{usage(spec)}") from None


def fail(spec: Callable[..., Any], message: str) -> UsageError:
    """A UsageError for a line that parsed but does not make sense, with the usage."""
    return UsageError(f"{message}\n{usage(spec)}")


__all__ = ["dockerfile", "fail", "k8s", "lab", "parse", "usage"]
