"""A Docker base image made from this machine's static busybox, for building with no registry.

:func:`busybox_rootfs` is the image's root filesystem as a tar (``/bin/busybox``, a symlink per
applet, an empty ``/tmp``), imported by :meth:`DockerBuilder.import_busybox_base
<labkit.images.docker_builder.DockerBuilder.import_busybox_base>` as :data:`LOCAL_BASE` with
:data:`BUSYBOX_CONFIG`. Only a statically linked busybox runs in an image with no libraries.
"""

from __future__ import annotations

import io
import struct
import subprocess
import tarfile
from pathlib import Path

from labkit.errors import UsageError

LOCAL_BASE = "labkit-busybox:1"  # the base import_busybox_base() makes
BUSYBOX_CONFIG = ["ENV PATH=/bin", 'CMD ["sh"]']
PT_INTERP = 3  # ELF program header type of a dynamic executable's loader


def busybox_rootfs(busybox: Path) -> bytes:
    """A root filesystem as a tar: bin/busybox, a symlink per applet, and an empty tmp/."""
    if not busybox.is_file() or not is_static(busybox):
        raise UsageError(
            f"{busybox} is not a statically linked busybox",
            hint="Install Debian's busybox-static (apt-get install busybox-static), whose /bin/busybox is.",
        )
    listed = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder, mode in (("bin", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in sorted(set(listed.split()) - {"busybox"}):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def is_static(binary: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP): it needs no shared libraries."""
    data = binary.read_bytes()
    if data[:4] != b"\x7fELF":
        return False
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    offset_at, header = (0x20, 0x36) if wide else (0x1C, 0x2A)
    table = struct.unpack_from(order + ("Q" if wide else "I"), data, offset_at)[0]
    size, count = struct.unpack_from(order + "HH", data, header)
    types = (struct.unpack_from(order + "I", data, table + i * size)[0] for i in range(count))
    return PT_INTERP not in types
