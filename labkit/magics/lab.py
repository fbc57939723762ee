"""``%lab``: the Lab's status; ``%lab connect TARGET [--context C]``, ``%lab use NAMESPACE``,
``%lab reset``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labkit.config import TARGETS
from labkit.magics import args

if TYPE_CHECKING:
    from labkit.magics.host import MagicsHost


def status_text(status: Any) -> str:
    """A LabStatus as aligned ``name: value`` lines."""
    rows = [
        ("target", status.target),
        ("cluster", status.cluster),
        ("context", status.context),
        ("server", status.server),
        ("nodes", ", ".join(status.nodes) or "none"),
        ("namespace", status.namespace),
        ("builder", status.builder),
    ]
    if getattr(status, "runtime", ""):
        rows.append(("runtime", status.runtime))
    rows.append(("widgets", "lab.pods_per_node(), lab.request_distribution(service)"))
    return "\n".join(f"{name + ':':<11}{value}" for name, value in rows)


def run(magics: MagicsHost, line: str) -> None:
    """The ``%lab`` magic."""
    opts = args.parse(args.lab, line)
    if opts.context is not None and opts.command != "connect":
        raise args.fail(args.lab, "--context only applies to %lab connect")
    if opts.command is None:
        if opts.value is not None:
            raise args.fail(args.lab, f"unknown command {opts.value!r}: use connect, use or reset")
        print(status_text(magics.lab.status()), flush=True)
    elif opts.command == "connect":
        _connect(opts.value, opts.context)
    elif opts.command == "use":
        if not opts.value:
            raise args.fail(args.lab, "%lab use needs a namespace, e.g. %lab use dev")
        magics.lab.use(opts.value)
        print(f"namespace: {opts.value}", flush=True)
    else:
        if opts.value is not None:
            raise args.fail(args.lab, "%lab reset takes no argument")
        _reset(magics)


def _connect(target: str | None, context: str | None) -> None:
    if target not in TARGETS:
        choice = ", ".join(TARGETS)
        raise args.fail(args.lab, f"%lab connect needs a target, one of {choice} (not {target!r})")
    from labkit.kernel import connect

    print(status_text(connect(target, context=context).status()), flush=True)


def _reset(magics: MagicsHost) -> None:
    deleted = magics.lab.reset()
    for name in deleted:
        print(f"{name} deleted", flush=True)
    if not deleted:
        print("nothing to delete: this Lab has applied nothing yet", flush=True)
