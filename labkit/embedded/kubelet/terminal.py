"""A pseudo-terminal for a container's process or an exec'd command (``tty: true``, ``exec -t``).

The process gets the terminal's other end as stdin, stdout and stderr, and as its controlling
tty (``launch(..., terminal=True)``), so shells prompt, edit lines and get SIGWINCH on
:meth:`Terminal.resize`. The daemon reads and writes the master side
through the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios

READ_LIMIT = 64 * 1024  # output buffered before the process waits for its reader
EOF_CHARACTER = b"\x04"  # what ends a terminal's input (Ctrl-D at the start of a line)


class Terminal:
    """The master side of a pseudo-terminal: ``output`` to read, :meth:`writer` to type into."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self._reader = asyncio.StreamReader(limit=READ_LIMIT)
        self.output: asyncio.StreamReader = _EndAtEIO(self._reader)
        self._transports: list[asyncio.BaseTransport] = []
        self._closed = False

    def _close_slave(self) -> None:
        if self.slave >= 0:
            with contextlib.suppress(OSError):
                os.close(self.slave)
            self.slave = -1

    async def connect(self) -> None:
        """Start reading the master side (call once the child has the slave side)."""
        self._close_slave()  # the child holds it now; the daemon must not keep it open
        loop = asyncio.get_running_loop()
        read_file = os.fdopen(self.master, "rb", buffering=0, closefd=False)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self._reader), read_file
        )
        self._transports.append(transport)

    async def writer(self) -> asyncio.StreamWriter:
        """A writer whose bytes the process reads as typed input."""
        loop = asyncio.get_running_loop()
        write_file = os.fdopen(os.dup(self.master), "wb", buffering=0)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, write_file)
        self._transports.append(transport)
        return asyncio.StreamWriter(transport, protocol, None, loop)

    def type_eof(self) -> None:
        """End of input, as Ctrl-D at the start of a line."""
        if not self._closed:
            with contextlib.suppress(OSError):
                os.write(self.master, EOF_CHARACTER)

    def resize(self, width: int, height: int) -> None:
        """Set the terminal's size; the process gets SIGWINCH (nonsense sizes are ignored)."""
        if self._closed or not (0 < width < 65536 and 0 < height < 65536):
            return
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def close(self) -> None:
        """Release both sides (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        for transport in self._transports:  # off the event loop first, then the descriptors
            transport.close()
        self._close_slave()
        with contextlib.suppress(OSError):
            os.close(self.master)


class _EndAtEIO(asyncio.StreamReader):
    """A pty master's output, where the end shows as EIO once the process's side closes."""

    def __init__(self, inner: asyncio.StreamReader) -> None:
        super().__init__()
        self._inner = inner

    async def read(self, n: int = -1) -> bytes:
        try:
            return await self._inner.read(n)
        except OSError:
            return b""
