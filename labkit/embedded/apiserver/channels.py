"""The channel protocol of Kubernetes' streaming subresources over WebSocket.

Every WebSocket message is one channel's bytes, led by the channel number:
``0`` stdin, ``1`` stdout, ``2`` stderr, ``3`` the error channel (a Status when the command
ends), ``4`` terminal resizes (``{"Width": w, "Height": h}``). ``v5.channel.k8s.io`` (kubectl
1.30 and later) adds ``255``: a client message ``[255, n]`` closes channel ``n`` (stdin's end
of file). The official Python client sends text messages too: the first character is then
the channel. Port forwarding over ``v4.channel.k8s.io`` uses channels ``2i`` (data) and
``2i + 1`` (error) for the i-th port, each opened with the port number (two bytes, little end
first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4, "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
MAX_MESSAGE = 16 * 1024 * 1024  # kubectl cp sends its tar in small pieces; this bounds any one


def socket_for(protocols: tuple[str, ...]) -> web.WebSocketResponse:
    """A WebSocket response offering ``protocols`` (the client's first match is chosen)."""
    return web.WebSocketResponse(protocols=protocols, max_msg_size=MAX_MESSAGE, autoping=True, compress=False)


def wants_websocket(request: web.Request) -> bool:
    """Whether the request asks to upgrade to WebSocket."""
    return request.headers.get("Upgrade", "").lower() == "websocket"


class ChannelSocket:
    """One side of the channel protocol over an open WebSocket."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    @property
    def protocol(self) -> str:
        """The subprotocol agreed on ("" if the client offered none we speak)."""
        return self.ws.ws_protocol or ""

    async def send(self, channel: int, data: bytes) -> bool:
        """Send ``data`` on ``channel``; False once the client is gone."""
        if self.ws.closed:
            return False
        try:
            await self.ws.send_bytes(bytes((channel,)) + data)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def messages(self) -> AsyncIterator[tuple[int, bytes]]:
        """The client's messages as (channel, bytes), until it closes or goes away."""
        async for message in self.ws:
            if message.type == WSMsgType.BINARY:
                data: bytes = message.data
                if data:
                    yield data[0], data[1:]
            elif message.type == WSMsgType.TEXT:
                text: str = message.data
                if text:
                    yield ord(text[0]) & 0xFF, text[1:].encode()
            elif message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                return
