"""The ``pods/exec`` and ``pods/attach`` subresources: a command's streams over WebSocket.

kubectl 1.30 and later, the official Python client (``kubernetes.stream.stream``) and kr8s
upgrade to WebSocket with the channel protocol (:mod:`labkit.embedded.apiserver.channels`).
Everything kube-apiserver checks before the upgrade is checked here first, and refused with
its Status and words (kubectl then shows ``error: unable to upgrade connection: ...``); the
kubelet side runs the command (:class:`labkit.embedded.streaming.ContainerStreams`). When
the command ends, the error channel carries its exit code as kubelet reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from labkit.embedded.apiserver import routing
from labkit.embedded.apiserver.channels import (
    CLOSE,
    ERROR,
    EXEC_PROTOCOLS,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    V4,
    V5,
    ChannelSocket,
    socket_for,
    wants_websocket,
)
from labkit.embedded.apiserver.logs import pick_container
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.status import ApiError, bad_request, method_not_allowed, not_found
from labkit.embedded.resources import lookup
from labkit.embedded.streaming import ContainerStreams, Session, StreamError

PODS = lookup("", "v1", "pods")
CHUNK = 32 * 1024
DRAIN_AFTER_EXIT = 2.0  # seconds to pass on what a finished command left in its pipes
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def query_flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (absent: false)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return False
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise bad_request(f'strconv.ParseBool: parsing "{raw}": invalid syntax (query parameter {name})')


def running_pod(registry: Registry, target: routing.Target) -> dict[str, Any]:
    """The pod a streaming request names, refused as kube-apiserver does when it does not run."""
    if target.name is None:
        raise method_not_allowed()
    pod = registry.store.find(PODS.key, target.namespace or "default", target.name)
    if pod is None:
        raise not_found(PODS, target.name)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise bad_request(f"cannot exec into a container in a completed pod; current phase is {phase}")
    if not (pod.get("spec") or {}).get("nodeName"):
        raise bad_request(f"pod {target.name} does not have a host assigned")
    return pod


def exit_status(code: int, argv: list[str]) -> dict[str, Any]:
    """The error channel's Status for a command that ended with ``code``."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command "
            f"[{' '.join(argv)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


class ExecHandler:
    """Serves ``pods/exec`` and ``pods/attach``."""

    def __init__(self, registry: Registry, streams: ContainerStreams | None) -> None:
        self.registry = registry
        self.streams = streams

    async def handle(self, request: web.Request, target: routing.Target) -> web.StreamResponse:
        """Check the request, upgrade, and run the session."""
        if request.method not in ("GET", "POST"):
            raise method_not_allowed()
        attach = target.subresource == "attach"
        pod = running_pod(self.registry, target)
        container = pick_container(pod, request.query.get("container", ""))
        stdin, stdout = query_flag(request, "stdin"), query_flag(request, "stdout")
        stderr, tty = query_flag(request, "stderr"), query_flag(request, "tty")
        argv = request.query.getall("command", [])
        if not attach and not argv:
            raise bad_request("you must specify at least 1 command")
        if not (stdin or stdout or stderr):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if tty:
            stderr = False  # as kubelet: a terminal has one output
        if not wants_websocket(request):
            raise ApiError(
                400,
                "Upgrade request required: labkit serves exec and attach over WebSocket "
                "(kubectl 1.30 or later, the kubernetes Python client's stream())",
                "BadRequest",
            )
        if self.streams is None:
            raise ApiError(503, "this API server runs no nodes", "ServiceUnavailable")
        try:
            if attach:
                session = await self.streams.attach(pod, container, stdin=stdin)
            else:
                session = await self.streams.exec(pod, container, argv, stdin=stdin, tty=tty)
        except StreamError as e:
            raise ApiError(e.code, str(e)) from None
        try:
            ws = socket_for(EXEC_PROTOCOLS)
            await ws.prepare(request)
            await _serve(ChannelSocket(ws), session, argv, stdout=stdout, stderr=stderr, attach=attach)
            return ws
        finally:
            session.close()


async def _serve(
    sock: ChannelSocket,
    session: Session,
    argv: list[str],
    *,
    stdout: bool,
    stderr: bool,
    attach: bool = False,
) -> None:
    """Pass the streams both ways until the command ends or the client goes away. An attach
    ends with Success whatever the exit code, as kubelet's (kubectl reads that from the pod)."""
    wanted = {STDOUT: stdout, STDERR: stderr}
    pumps = [
        asyncio.ensure_future(_pump(sock, channel, reader, wanted.get(channel, True)))
        for channel, reader in session.outputs.items()
    ]
    if session.start_error is not None:
        await sock.send(STDERR if stderr else STDOUT, (session.start_error + "\n").encode())
    reading = asyncio.ensure_future(_read_input(sock, session))
    ending = asyncio.ensure_future(session.wait())
    try:
        await asyncio.wait({reading, ending}, return_when=asyncio.FIRST_COMPLETED)
        if not ending.done():  # the client went away: end the command
            session.close()
            return
        code = ending.result()
        _, late = await asyncio.wait(pumps, timeout=DRAIN_AFTER_EXIT)
        session.close()  # what the command left running would hold its output open
        if late:
            await asyncio.wait(late, timeout=DRAIN_AFTER_EXIT)
        await _report(sock, 0 if attach else code, argv)
        await sock.ws.close()
    finally:
        for task in (*pumps, reading, ending):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*pumps, reading, ending, return_exceptions=True)


async def _report(sock: ChannelSocket, code: int, argv: list[str]) -> None:
    """The exit code on the error channel: a Status for v4 and v5, text for older protocols."""
    status = exit_status(code, argv)
    if sock.protocol in (V4, V5):
        await sock.send(ERROR, json.dumps(status).encode())
    elif code != 0:
        await sock.send(ERROR, str(status["message"]).encode())


async def _pump(sock: ChannelSocket, channel: int, reader: asyncio.StreamReader, wanted: bool) -> None:
    """One output stream to its channel (read and dropped if the client did not ask for it),
    each piece sent before the next is read: the command waits for a slow client."""
    while data := await reader.read(CHUNK):
        if wanted and not await sock.send(channel, data):
            return


async def _read_input(sock: ChannelSocket, session: Session) -> None:
    """The client's messages: stdin, resizes, and v5's close of stdin."""
    async for channel, data in sock.messages():
        if channel == STDIN:
            if data:
                await session.write(data)
        elif channel == RESIZE:
            size = _size(data)
            if size is not None:
                session.resize(*size)
        elif channel == CLOSE and data[:1] == bytes((STDIN,)):
            session.close_stdin()


def _size(data: bytes) -> tuple[int, int] | None:
    """``{"Width": w, "Height": h}``, or None for anything else (ignored, as kubelet does)."""
    try:
        size = json.loads(data)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, TypeError, KeyError):
        return None
    return width, height
