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
from typing import IO

READ_LIMIT = 64 * 1024  # output buffered before the process waits for its reader
EOF_CHARACTER = b"\x04"  # what ends a terminal's input (Ctrl-D at the start of a line)


class Terminal:
    """The master side of a pseudo-terminal: ``output`` to read, :meth:`writer` to type into."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.output: asyncio.StreamReader = _EndAtEIO()
        self._files: list[IO[bytes]] = []
        self._closed = False

    async def connect(self) -> None:
        """Start reading the master side (call once the child has the slave side)."""
        with contextlib.suppress(OSError):
            os.close(self.slave)
        loop = asyncio.get_running_loop()
        inner = self.output._inner  # type: ignore[attr-defined]
        read_file = os.fdopen(self.master, "rb", buffering=0, closefd=False)
        self._files.append(read_file)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(inner), read_file)

    async def writer(self) -> asyncio.StreamWriter:
        """A writer whose bytes the process reads as typed input."""
        loop = asyncio.get_running_loop()
        write_file = os.fdopen(os.dup(self.master), "wb", buffering=0)
        self._files.append(write_file)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, write_file)
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
        for f in self._files:
            with contextlib.suppress(OSError):
                f.close()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class _EndAtEIO(asyncio.StreamReader):
    """A pty master's output, where the end shows as EIO once the process's side closes."""

    def __init__(self) -> None:
        super().__init__()
        self._inner = asyncio.StreamReader(limit=READ_LIMIT)

    async def read(self, n: int = -1) -> bytes:
        try:
            return await self._inner.read(n)
        except OSError:
            return b""
