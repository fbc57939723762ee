"""``%%k8s [apply|delete|diff] [-n NS] [--no-wait] [--timeout S]``.

The cell holds Kubernetes manifests (``---`` between documents). Before anything is sent,
``{expr}`` and ``$name`` expand from the notebook's variables with IPython's own formatter,
as for shell commands (``{{`` and ``$$`` give a literal ``{`` and ``$``). Each field expands
on its own, so one that cannot (``{app: web}``, a shell ``$PORT``) stays as written without
stopping the others, and ``${NAME}`` is left to the shell it is written for. A ``{name}``
whose name the notebook does not define is an error: it is almost always a typo.

``apply`` prints one line per object as kubectl does (``deployment.apps/posts configured``)
and, unless ``--no-wait``, waits for the rollouts, showing their progress.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from IPython.utils.text import DollarFormatter

from labkit.errors import UsageError
from labkit.magics import args
from labkit.magics.render import Progress

if TYPE_CHECKING:
    from labkit.kube.apply import Applied
    from labkit.magics.host import MagicsHost

FIELD = re.compile(r"\{\{|\}\}|\$\$|\$\{[^{}\n]*\}|\{[^{}\n]*\}|\$\w+")
NAME = re.compile(r"\{\s*([A-Za-z_]\w*)")
LITERAL = {"{{": "{", "}}": "}", "$$": "$"}


def expand(text: str, namespace: dict[str, Any]) -> str:
    """``text`` with each ``{expr}`` and ``$name`` replaced by its value in ``namespace``.

    A field that cannot be evaluated stays as written, except an undefined ``{name}``, which
    raises UsageError naming it and its line."""
    formatter = DollarFormatter()
    missing: list[str] = []
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines, 1):

        def field(match: re.Match[str], number: int = number) -> str:
            token = match.group(0)
            if token in LITERAL:
                return LITERAL[token]
            if token.startswith("${"):
                return token  # the shell's own syntax, as in sh -c "echo ${HOME}"
            try:
                return formatter.vformat(token, args=[], kwargs=namespace)
            except NameError:
                name = NAME.match(token)
                if name:
                    missing.append(f"{token} on line {number}")
            except Exception:
                pass
            return token

        lines[number - 1] = FIELD.sub(field, line)
    if missing:
        raise UsageError(
            f"the cell uses names the notebook does not define: {', '.join(missing)}",
            "define them in a cell above, or write {{ and }} for a literal brace",
        )
    return "".join(lines)


def run(magics: MagicsHost, line: str, cell: str) -> None:
    """The ``%%k8s`` magic."""
    opts = args.parse(args.k8s, line)
    if opts.action == "diff" and (opts.no_wait or opts.timeout is not None):
        raise args.fail(args.k8s, "--no-wait and --timeout do not apply to diff")
    if opts.action == "delete" and opts.timeout is not None:
        raise args.fail(args.k8s, "--timeout does not apply to delete")
    manifests = expand(cell, dict(magics.shell.user_ns))
    if not manifests.strip():
        raise args.fail(args.k8s, "the cell is empty: write Kubernetes manifests below the %%k8s line")
    lab = magics.lab
    if opts.action == "diff":
        print(lab.diff(manifests, namespace=opts.namespace).rstrip() or "no differences", flush=True)
        return
    if opts.action == "delete":
        for applied in lab.delete(manifests, namespace=opts.namespace, wait=not opts.no_wait):
            print(f"{applied.ref} {applied.action}", flush=True)
        return
    progress = Progress(magics.shell)

    def report(applied: list[Applied]) -> None:  # one line per object, before the waiting, as kubectl
        for item in applied:
            print(f"{item.ref} {item.action}", flush=True)

    lab.apply(
        manifests,
        namespace=opts.namespace,
        wait=not opts.no_wait,
        timeout=opts.timeout,
        progress=progress.line,
        on_applied=report,
    )
