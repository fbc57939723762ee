"""The server side of SPDY/3.1 as Kubernetes uses it for port forwarding.

kubectl 1.31 and later tunnel SPDY through a WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``): its binary messages carry SPDY's byte stream. A session
is many streams, each opened by the client with SYN_STREAM and a header block, answered
with SYN_REPLY, then DATA frames both ways until each side's FIN (or an RST_STREAM).

Frames (big-endian): a control frame is ``1 | version(15) | type(16) | flags(8) |
length(24)`` and its data; a data frame is ``0 | stream id(31) | flags(8) | length(24)``
and its data. Header blocks are zlib streams (one per direction for the whole session,
flushed after each block) primed with the protocol's dictionary, and hold a count and
length-prefixed names and values. As in spdystream (what kubectl and kubelet use), window
updates are accepted and not enforced; back-pressure comes from the transport.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
CANCEL, INTERNAL_ERROR, PROTOCOL_ERROR = 5, 6, 1
MAX_FRAME = 1024 * 1024  # clients send 32 KiB at most; a frame claiming more ends the session
PIECE = 256 * 1024  # the most data this side puts in one frame
MAX_HEADERS = 64 * 1024  # an inflated header block bigger than this is refused
QUEUED_CHUNKS = 16  # data frames held for a stream before the session stops reading

# The header compression dictionary of the SPDY/3 draft (section 2.6.10.1): length-prefixed
# header names and values, then a run of status codes, reasons, dates and media types.
_NAMES = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
)
_WORDS = [
    *_NAMES.split(),
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(Exception):
    """The peer broke the protocol; the session ends."""


@dataclass(eq=False)
class Stream:
    """One SPDY stream: its headers, the client's data as it comes, and the way back."""

    id: int
    headers: dict[str, str]
    session: Session
    chunks: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUED_CHUNKS))
    local_closed: bool = False
    remote_closed: bool = False
    reset: bool = False

    async def read(self) -> bytes:
        """The next piece of the client's data; b"" once it has sent FIN (or reset)."""
        if self.remote_closed and self.chunks.empty():
            return b""
        chunk = await self.chunks.get()
        if chunk is None:
            self.remote_closed = True
            return b""
        return chunk

    async def write(self, data: bytes, fin: bool = False) -> None:
        """Send data on this stream (FIN with the last piece if ``fin``)."""
        if self.local_closed or self.reset:
            return
        self.local_closed = fin
        await self.session.send_data(self.id, data, fin)

    async def close(self) -> None:
        """Send FIN: no more data from this side."""
        if not self.local_closed and not self.reset:
            await self.write(b"", fin=True)

    def _end(self) -> None:
        if not self.remote_closed:
            try:
                self.chunks.put_nowait(None)
            except asyncio.QueueFull:
                self.remote_closed = True  # read() drains what is queued, then ends


class Session:
    """A SPDY server session over a byte transport: ``send`` writes bytes out; :meth:`feed`
    takes the bytes that come in; ``on_stream`` is called for each stream the client opens."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], on_stream: Callable[[Stream], None]) -> None:
        self._send = send
        self._on_stream = on_stream
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._lock = asyncio.Lock()  # frames go out whole and in order (header blocks share a zlib stream)
        self.streams: dict[int, Stream] = {}
        self.closed = False

    # -- in --------------------------------------------------------------------------------

    async def feed(self, data: bytes) -> None:
        """Take bytes from the client: handle each whole frame in them."""
        self._buffer += data
        while len(self._buffer) >= 8:
            if self._buffer[0] & 0x80:
                version = int.from_bytes(self._buffer[0:2], "big") & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version}")
            length = int.from_bytes(self._buffer[5:8], "big")
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes")
            if len(self._buffer) < 8 + length:
                return
            head, body = bytes(self._buffer[:8]), bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            if head[0] & 0x80:
                await self._control(int.from_bytes(head[2:4], "big"), head[4], body)
            else:
                await self._data(int.from_bytes(head[0:4], "big") & 0x7FFFFFFF, head[4], body)

    async def _control(self, kind: int, flags: int, body: bytes) -> None:
        if kind == SYN_STREAM:
            if len(body) < 10:
                raise ProtocolError("short SYN_STREAM")
            stream_id = int.from_bytes(body[0:4], "big") & 0x7FFFFFFF
            stream = Stream(stream_id, self._headers(body[10:]), self)
            self.streams[stream_id] = stream
            await self._write_control(SYN_REPLY, 0, struct.pack(">I", stream_id) + self._header_block({}))
            if flags & FLAG_FIN:
                stream._end()
            self._on_stream(stream)
        elif kind == RST_STREAM:
            stream_id = int.from_bytes(body[0:4], "big") & 0x7FFFFFFF
            stream = self.streams.pop(stream_id, None)
            if stream is not None:
                stream.reset = True
                stream._end()
        elif kind == PING:
            await self._write_control(PING, 0, body[:4])
        elif kind == GOAWAY:
            self.close()
        elif kind == HEADERS:
            self._headers(body[4:])  # keeps the zlib stream in step; nothing uses them
        # SETTINGS and WINDOW_UPDATE: nothing to do (no flow control, as spdystream)

    async def _data(self, stream_id: int, flags: int, body: bytes) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.remote_closed:
            return
        if body:
            await stream.chunks.put(body)  # a full queue stops reading: back-pressure
        if flags & FLAG_FIN:
            stream._end()

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block, MAX_HEADERS)
        if self._inflate.unconsumed_tail:
            raise ProtocolError("header block too large")
        try:
            (count,) = struct.unpack_from(">I", raw, 0)
            at, headers = 4, {}
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, at)
                name = raw[at + 4 : at + 4 + n].decode("latin-1").lower()
                at += 4 + n
                (n,) = struct.unpack_from(">I", raw, at)
                headers[name] = raw[at + 4 : at + 4 + n].decode("latin-1").split("\0")[0]
                at += 4 + n
        except struct.error:
            raise ProtocolError("malformed header block") from None
        return headers

    # -- out -------------------------------------------------------------------------------

    def _header_block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            raw += struct.pack(">I", len(name)) + name.encode()
            raw += struct.pack(">I", len(value)) + value.encode()
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    async def _write_control(self, kind: int, flags: int, body: bytes) -> None:
        if self.closed:
            return
        head = struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body))
        async with self._lock:
            await self._send(head + body)

    async def send_data(self, stream_id: int, data: bytes, fin: bool) -> None:
        """A DATA frame (or several, for data beyond a frame's size)."""
        async with self._lock:
            for at in range(0, max(len(data), 1), PIECE):
                piece = data[at : at + PIECE]
                last = at + PIECE >= len(data)
                flags = FLAG_FIN if fin and last else 0
                if self.closed:
                    return
                await self._send(struct.pack(">II", stream_id, (flags << 24) | len(piece)) + piece)

    async def reset_stream(self, stream_id: int, status: int = CANCEL) -> None:
        """RST_STREAM: abandon a stream."""
        self.streams.pop(stream_id, None)
        await self._write_control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def close(self) -> None:
        """End the session: every stream sees the end of its data."""
        self.closed = True
        for stream in self.streams.values():
            stream._end()
        self.streams.clear()
