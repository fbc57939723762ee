"""Run a command in a pod's container and get its output and exit code (``lab.exec``).

It speaks the ``pods/exec`` WebSocket protocol through the official client's ``stream()``, so
it works against any cluster: the embedded one, kind, or a real one.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.errors import ClusterError, UsageError
from labkit.kube.http import unreachable

if TYPE_CHECKING:
    from labkit.kube.client import KubeClient

STDERR_CHANNEL = 2


@dataclass(frozen=True)
class ExecResult:
    """What a command printed and how it ended. ``str()`` is its standard output."""

    pod: str
    command: tuple[str, ...]
    stdout: str
    stderr: str
    exit_code: int

    @property
    def ok(self) -> bool:
        """Whether the command exited with 0."""
        return self.exit_code == 0

    def __str__(self) -> str:
        return self.stdout

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's display
        printer.text(self.stdout + self.stderr)
        if self.exit_code:
            printer.text(f"(exit code {self.exit_code})")


def command_argv(command: str | list[str] | tuple[str, ...]) -> list[str]:
    """A command as argv: a list as it is, a string split as a shell would (no shell runs it)."""
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv:
        raise UsageError("give the command to run, e.g. lab.exec('web', 'ls /')")
    return argv


def exec_in(
    kube: KubeClient,
    namespace: str,
    pod: str,
    command: str | list[str] | tuple[str, ...],
    *,
    container: str | None = None,
    stdin: str | bytes | None = None,
    timeout: float = 60.0,
) -> ExecResult:
    """Run ``command`` in ``pod`` (its ``container``), feeding it ``stdin``; the result once it
    ends. ClusterError with the server's words when the pod or container cannot run it."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.stream import stream

    argv = command_argv(command)
    kwargs: dict[str, Any] = {"container": container} if container else {}
    try:
        ws = stream(
            kube.core.connect_get_namespaced_pod_exec, pod, namespace, command=argv,
            stdin=stdin is not None, stdout=True, stderr=True, tty=False,
            _preload_content=False, **kwargs,
        )  # fmt: skip
    except ApiException as e:
        raise ClusterError(_message(e), f"lab.pods() lists the pods in namespace {namespace}") from e
    except OSError as e:
        raise unreachable(kube.server, e) from e
    stdout: list[str] = []
    stderr: list[str] = []
    try:
        if stdin is not None:
            ws.write_stdin(stdin.decode() if isinstance(stdin, bytes) else stdin)
            ws.close_channel(0)  # end of input (v5.channel.k8s.io)
        deadline = time.monotonic() + timeout
        while ws.is_open():
            if time.monotonic() > deadline:
                raise ClusterError(f"{shlex.join(argv)} in pod {pod} did not finish within {timeout:g} s")
            ws.update(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
            if ws.peek_stdout():
                stdout.append(ws.read_stdout())
            if ws.peek_stderr():
                stderr.append(ws.read_stderr())
        code = ws.returncode
    finally:
        ws.close()
    return ExecResult(
        pod, tuple(argv), "".join(stdout), "".join(stderr), int(code if code is not None else -1)
    )


def _message(error: Any) -> str:
    """The API server's message from an ApiException of a refused upgrade (the client puts the
    response, ``Handshake status ... -+-+- headers -+-+- body``, in its reason)."""
    text = str(getattr(error, "body", None) or getattr(error, "reason", "") or error)
    body = text.rsplit("-+-+-", 1)[-1].strip()
    if body.startswith(("b'", 'b"')):
        body = body[2:-1]
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return text.split(" -+-+- ", 1)[0].split("\n", 1)[0]
