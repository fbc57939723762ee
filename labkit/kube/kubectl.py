"""What kubectl cannot do in a notebook cell, and what to use instead.

A cell has no terminal and runs to its end, so commands that need a terminal (``exec -it``,
``attach``, ``run -it``) or that run until stopped (``port-forward``, ``logs -f``,
``get -w``) would hang it. :func:`interactive_refusal` names the one-line alternative.
"""

from __future__ import annotations

TERMINAL = (
    "needs a terminal, and a notebook cell has none: run it in a terminal (JupyterLab: File > New > "
    "Terminal), or without -i/-t"
)
_INTERACTIVE_FLAGS = {"-i", "-t", "-it", "-ti", "--stdin", "--tty", "--stdin=true", "--tty=true"}
_FOLLOW_FLAGS = {"-f", "--follow", "--follow=true"}
_WATCH_FLAGS = {"-w", "--watch", "--watch=true", "--watch-only", "--watch-only=true"}


def _subcommand(argv: list[str]) -> str:
    """The first word that is not an option (good enough for the commands checked here)."""
    return next((a for a in argv if not a.startswith("-")), "")


def interactive_refusal(argv: list[str]) -> str | None:
    """Why ``kubectl ARGV`` cannot run in a cell and what to use instead; None if it can."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    sub = _subcommand(words)
    flags = set(words)
    if sub == "port-forward":
        return (
            "kubectl port-forward runs until stopped, which would hang the cell: in Python use "
            '`with lab.port_forward("svc/web", 80) as url: ...`, or run it in a terminal'
        )
    if sub in ("exec", "run") and flags & _INTERACTIVE_FLAGS:
        alternative = (
            "lab.exec(pod, command), or %kubectl exec POD -- COMMAND" if sub == "exec" else "-i/-t off"
        )
        return f"kubectl {sub} -it {TERMINAL}; for output and an exit code use {alternative}"
    if sub == "attach":
        return f"kubectl attach {TERMINAL}; lab.logs(pod) shows what the container printed"
    if sub == "logs" and flags & _FOLLOW_FLAGS:
        return "kubectl logs -f never ends, which would hang the cell: use lab.logs(pod) (or --tail N)"
    if sub == "get" and flags & _WATCH_FLAGS:
        return "kubectl get -w never ends, which would hang the cell: look again, or use lab.wait_ready(...)"
    return None
