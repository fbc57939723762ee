"""The ``pods/portforward`` subresource: TCP connections to a pod's ports, over WebSocket.

Two forms, chosen by the client's subprotocol:

- ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.31 and later): SPDY tunnelled through the
  WebSocket (:mod:`labkit.embedded.apiserver.spdy`). Each local connection is a pair of
  streams with headers ``streamType`` (``error`` or ``data``), ``port`` and ``requestID``.
  A port nobody listens on gives kubelet's message on the error stream; the tunnel stays up.
- ``v4.channel.k8s.io`` / ``portforward.k8s.io`` (the official Python client): the ports
  come in the ``ports`` query parameter and each gets a data and an error channel
  (:mod:`labkit.embedded.apiserver.channels`), one connection per port.

The API server itself connects to the pod, on its pod IP (privileged ports offset as the
network shim serves them). Every connection is recorded for each Service that has the pod as
a ready endpoint of that port, as pinned traffic (``via: port-forward``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from labkit.embedded.apiserver import routing, spdy
from labkit.embedded.apiserver.channels import V4, ChannelSocket, socket_for, wants_websocket
from labkit.embedded.apiserver.exec import running_pod
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.service_proxy import client_of
from labkit.embedded.apiserver.status import ApiError, bad_request, method_not_allowed
from labkit.embedded.kubeproxy.router import CONNECT_FAILED, Record, ServiceRouter
from labkit.embedded.kubeproxy.table import is_loopback
from labkit.shared.podports import pod_address

log = logging.getLogger("labkit.portforward")
TUNNEL = "SPDY/3.1+portforward.k8s.io"
PROTOCOLS = (TUNNEL, V4, "portforward.k8s.io")
CHUNK = 256 * 1024  # read what the pod has sent, up to this much, into one frame
CONNECT_TIMEOUT = 5.0


def _ports(request: web.Request) -> list[int]:
    """The ``ports`` query parameter (repeated or comma-separated), checked as kubelet does."""
    out = []
    for value in request.query.getall("ports", []):
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or not 0 < int(part) < 65536:
                raise bad_request(f'invalid port "{part}": must be a number from 1 to 65535')
            out.append(int(part))
    return out


class PortForwardHandler:
    """Serves ``pods/portforward``."""

    def __init__(self, registry: Registry, router: ServiceRouter | None) -> None:
        self.registry = registry
        self.router = router

    async def handle(self, request: web.Request, target: routing.Target) -> web.StreamResponse:
        """Check the request, upgrade, and forward until the client is done."""
        if request.method not in ("GET", "POST"):
            raise method_not_allowed()
        pod = running_pod(self.registry, target)
        ip = str((pod.get("status") or {}).get("podIP") or "")
        if not is_loopback(ip):
            raise bad_request(f"pod {target.name} has no IP yet")
        ports = _ports(request)
        if not wants_websocket(request):
            raise ApiError(
                400,
                "Upgrade request required: labkit serves port-forward over WebSocket "
                "(kubectl 1.31 or later, the kubernetes Python client's portforward())",
                "BadRequest",
            )
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if TUNNEL not in offered and not ports:
            raise bad_request("at least 1 port must be specified (the ports query parameter)")
        ws = socket_for(PROTOCOLS)
        await ws.prepare(request)
        forward = _Forwarder(pod, self.router, client_of(request))
        try:
            if ws.ws_protocol == TUNNEL:
                await forward.tunnel(ws)
            else:
                await forward.channels(ChannelSocket(ws), ports)
        finally:
            await forward.close()
            await ws.close()
        return ws


class _Forwarder:
    """The connections of one port-forward session to one pod."""

    def __init__(self, pod: dict[str, Any], router: ServiceRouter | None, client: str) -> None:
        self.pod = pod
        self.name = str(pod["metadata"]["name"])
        self.uid = str(pod["metadata"].get("uid", ""))
        self.namespace = str(pod["metadata"].get("namespace", "default"))
        self.ip = str((pod.get("status") or {}).get("podIP") or "")
        self.router = router
        self.client = client
        self.tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        """End every connection of the session."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, list[Record]]:
        """Open a connection to the pod's ``port``; raises OSError with kubelet's message."""
        address = pod_address(self.pod, port)
        assert address is not None  # a port number always has an address
        host, real = address
        records = []
        if self.router is not None:
            records = self.router.record_pinned(self.namespace, self.ip, port, self.client, "port-forward")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, real, limit=CHUNK), CONNECT_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError) as e:
            for record in records:
                record.finish(CONNECT_FAILED)
            refused = isinstance(e, ConnectionRefusedError)
            why = "connect: connection refused" if refused else str(e) or "i/o timeout"
            raise OSError(
                f"error forwarding port {port} to pod {self.name}, uid {self.uid}: failed to connect to "
                f"localhost:{port} inside the pod: dial tcp4 {self.ip}:{port}: {why}"
            ) from None
        return reader, writer, records

    # -- SPDY through the WebSocket (kubectl) -----------------------------------------------

    async def tunnel(self, ws: web.WebSocketResponse) -> None:
        """Serve SPDY streams from the WebSocket's binary messages until it closes."""
        pairs: dict[str, dict[str, spdy.Stream]] = {}

        async def send(data: bytes) -> None:
            if not ws.closed:
                await ws.send_bytes(data)

        def on_stream(stream: spdy.Stream) -> None:
            request_id = stream.headers.get("requestid", str(stream.id))
            kind = stream.headers.get("streamtype", "")
            if kind not in ("error", "data"):
                self._spawn(session.reset_stream(stream.id, spdy.PROTOCOL_ERROR))
                return
            pair = pairs.setdefault(request_id, {})
            pair[kind] = stream
            if kind == "data":
                pairs.pop(request_id, None)
                self._spawn(self._forward_stream(stream, pair.get("error")))

        session = spdy.Session(send, on_stream)
        try:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    await session.feed(message.data)
                elif message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        except spdy.ProtocolError as e:
            log.info("port-forward to %s/%s: SPDY protocol error: %s", self.namespace, self.name, e)
        finally:
            session.close()

    async def _forward_stream(self, data: spdy.Stream, error: spdy.Stream | None) -> None:
        port_text = data.headers.get("port", "")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            if error is not None:
                await error.write(f'invalid port "{port_text}"'.encode(), fin=True)
            await data.close()
            return
        port = int(port_text)
        try:
            reader, writer, records = await self.connect(port)
        except OSError as e:
            if error is not None:
                await error.write(str(e).encode(), fin=True)
            await data.close()
            return
        await _relay(data.read, lambda b: data.write(b), data.close, reader, writer, records)
        if error is not None:
            await error.close()

    # -- channels (the Python client) -------------------------------------------------------

    async def channels(self, sock: ChannelSocket, ports: list[int]) -> None:
        """One connection per port, on channels 2i (data) and 2i+1 (error); the WebSocket
        closes when every port's connection has ended (kubelet's rule: v4 has no close)."""
        inputs: list[asyncio.Queue[bytes | None]] = []
        forwards = []
        for index, port in enumerate(ports):
            for channel in (2 * index, 2 * index + 1):
                await sock.send(channel, port.to_bytes(2, "little"))
            queue: asyncio.Queue[bytes | None] = asyncio.Queue(16)
            inputs.append(queue)
            forwards.append(asyncio.ensure_future(self._forward_channel(sock, index, port, queue)))

        async def from_client() -> None:
            async for channel, data in sock.messages():
                index = channel // 2
                if channel % 2 == 0 and index < len(inputs) and data:
                    await inputs[index].put(data)  # a slow pod port slows this client down
            for queue in inputs:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

        reading = asyncio.ensure_future(from_client())
        all_done = asyncio.ensure_future(asyncio.wait(forwards))
        try:
            await asyncio.wait({reading, all_done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reading, all_done, *forwards):
                task.cancel()
            await asyncio.gather(reading, all_done, *forwards, return_exceptions=True)

    async def _forward_channel(
        self, sock: ChannelSocket, index: int, port: int, queue: asyncio.Queue[bytes | None]
    ) -> None:
        try:
            reader, writer, records = await self.connect(port)
        except OSError as e:
            await sock.send(2 * index + 1, str(e).encode())
            return

        async def read() -> bytes:
            return await queue.get() or b""

        async def write(data: bytes) -> None:
            await sock.send(2 * index, data)

        async def done() -> None:
            return None

        await _relay(read, write, done, reader, writer, records)


async def _relay(
    read: Callable[[], Awaitable[bytes]],
    write: Callable[[bytes], Awaitable[None]],
    done: Callable[[], Awaitable[None]],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    records: list[Record],
) -> None:
    """Pass bytes both ways between the client's side and the pod's connection; the client's
    end half-closes the pod's side, the pod's end finishes the client's."""

    async def up() -> None:
        while chunk := await read():
            for record in records:
                record.bytes_in += len(chunk)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def down() -> None:
        while chunk := await reader.read(CHUNK):
            for record in records:
                record.bytes_out += len(chunk)
            await write(chunk)
        await done()

    upward = asyncio.ensure_future(up())
    try:
        await down()
    except (ConnectionError, OSError):
        pass
    finally:
        upward.cancel()
        with contextlib.suppress(BaseException):
            await upward
        writer.close()
        for record in records:
            record.finish()
