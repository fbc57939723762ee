"""The filesystem and network identity a container gets: its own copy of the image as ``/``.

Each run of a container starts from a fresh copy of its image's files (a container's
writable layer), in ``<pod dir>/<container>/root``. Over it the sandbox shows the host's
programs and libraries read-only (:func:`labkit.sandbox.view.borrowed`), the pod's own
``/etc`` files (``hosts``, ``hostname``, ``resolv.conf``, ``passwd``, ``group``), the pod's
volumes, and the network shim, loaded into every program through ``/etc/ld.so.preload``.
The shim's variables give the container its pod IP, hostname and port translation
(:mod:`labkit.sandbox.native`). Containers of one pod share the pod's ``/etc`` files and IP,
so they reach each other on ``localhost``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from labkit.embedded import addresses
from labkit.embedded.kubelet.network import PRIVILEGED_OFFSET
from labkit.embedded.runnable_images import ECHO_SERVER, Image
from labkit.sandbox.isolation import Isolation, own_for
from labkit.sandbox.view import INSIDE_LABKIT, Mount, View, borrowed

SHIM_INSIDE = f"{INSIDE_LABKIT}/netshim.so"
REPORT_INSIDE = f"{INSIDE_LABKIT}/report"
ECHO_INSIDE = f"{INSIDE_LABKIT}/echo_server.py"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
RESOLV = (
    "nameserver 127.0.0.53\nsearch {ns}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
)


@dataclass(frozen=True)
class PodFiles:
    """The files one pod's containers share: its ``/etc`` entries and the shim's report."""

    directory: Path

    @property
    def etc(self) -> Path:
        """Where the pod's own ``/etc`` files are."""
        return self.directory / "etc"

    @property
    def hosts(self) -> Path:
        """The pod's ``/etc/hosts`` (rewritten in place as Services come and go)."""
        return self.etc / "hosts"

    @property
    def report(self) -> Path:
        """Where the network shim reports (ports in use, refused destinations)."""
        return self.directory / "netshim.report"

    def write(self, namespace: str, hostname: str, shim: Path | None) -> None:
        """Make the pod's ``/etc`` files (once; the hosts file is kept up to date elsewhere)."""
        self.etc.mkdir(parents=True, exist_ok=True)
        files = {
            "hostname": hostname + "\n",
            "resolv.conf": RESOLV.format(ns=namespace),
            "passwd": PASSWD,
            "group": GROUP,
            "ld.so.preload": f"{SHIM_INSIDE}\n" if shim is not None else "",
        }
        for name, text in files.items():
            path = self.etc / name
            if not path.exists():
                path.write_text(text)
        if not self.hosts.exists():
            self.hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        self.report.touch()

    def mounts(self, shim: Path | None) -> list[Mount]:
        """The pod's files as the container sees them."""
        out = [
            Mount(self.etc / name, f"/etc/{name}") for name in ("hostname", "resolv.conf", "passwd", "group")
        ]
        out.append(Mount(self.hosts, "/etc/hosts"))
        if shim is not None:
            out.append(Mount(self.etc / "ld.so.preload", "/etc/ld.so.preload"))
            out.append(Mount(shim, SHIM_INSIDE))
            out.append(Mount(self.report, REPORT_INSIDE, writable=True))
        return out


def fresh_root(image: Image, directory: Path) -> Path:
    """A new copy of the image's files for one run of a container (its writable layer)."""
    root = directory / "root"
    if root.exists() or root.is_symlink():
        shutil.rmtree(root, ignore_errors=True)
    if image.root is not None and image.root.is_dir():
        shutil.copytree(image.root, root, symlinks=True)
    else:
        root.mkdir(parents=True)
    for name, mode in (("tmp", 0o1777), ("root", 0o700)):
        path = root / name
        path.mkdir(exist_ok=True)
        path.chmod(mode)
    return root


def builtin_mounts(image: Image) -> list[Mount]:
    """What a built-in image brings along: the echo server's script."""
    if "echo-server" in image.commands:
        return [Mount(ECHO_SERVER, ECHO_INSIDE)]
    return []


def inside_command(image: Image, argv: tuple[str, ...]) -> tuple[str, ...]:
    """``argv`` with a built-in image's program names turned into inside command lines."""
    if argv and argv[0] == "echo-server" and "echo-server" in image.commands:
        return (os.path.realpath(sys.executable), "-u", ECHO_INSIDE, *argv[1:])
    return argv


def container_view(
    isolation: Isolation,
    image: Image,
    directory: Path,
    pod: PodFiles,
    workdir: str,
    hostname: str,
    shim: Path | None,
    volumes: list[Mount],
) -> View:
    """The view of one run of a container, its root copied afresh and its mount points made."""
    root = fresh_root(image, directory)
    mounts, links = borrowed(root)
    mounts += builtin_mounts(image) + pod.mounts(shim) + volumes
    view = View(root, workdir or "/", tuple(mounts), hostname, tuple(links))
    view.stubs()
    cwd = root / view.cwd.lstrip("/")
    cwd.mkdir(parents=True, exist_ok=True)
    own_for(isolation, root)
    own_for(isolation, pod.report)  # the shim writes its reports as the container's user
    for mount in volumes:
        if mount.writable:  # an emptyDir: the container's user writes there
            own_for(isolation, mount.source)
    return view


def shim_env(
    pod_ip: str, hostname: str, node: str, cluster: str = "", report: str = REPORT_INSIDE
) -> dict[str, str]:
    """The network shim's variables for a container of a pod (and ``LABKIT_CLUSTER``, the
    cluster's state directory, which tells its processes from other clusters')."""
    return {
        "LABKIT_CLUSTER": cluster,
        "LABKIT_POD_IP": pod_ip,
        "LABKIT_HOSTNAME": hostname,
        "LABKIT_NODE": node,
        "LABKIT_PORT_OFFSET": str(PRIVILEGED_OFFSET),
        "LABKIT_CLUSTER_NETS": ",".join(addresses.current().nets),
        "LABKIT_LOOPBACK_ONLY": "1",
        "LABKIT_SHIM_REPORT": report,
    }


@dataclass(frozen=True)
class Sandbox:
    """How this machine isolates containers: the tool, the network shim, the launcher."""

    isolation: Isolation
    shim: Path | None
    launcher: list[str] | None  # prefix that makes a process die with the daemon

    @property
    def isolated(self) -> bool:
        """Whether containers get their own view (not ``LABKIT_ISOLATION=none``)."""
        return self.isolation.tool != "none"


def make_sandbox(cache_dir: Path) -> Sandbox:
    """Detect the isolation tool and build the native helpers (once per process); raises
    :class:`~labkit.sandbox.isolation.IsolationError` or
    :class:`~labkit.sandbox.native.NativeToolsError` with what to install."""
    from labkit.sandbox.isolation import detect
    from labkit.sandbox.native import native_tools

    isolation = detect()
    tools = native_tools(cache_dir)
    launcher = [str(tools.launcher), "--pdeathsig"]
    if isolation.tool == "proot":
        launcher.append("--no-statx")  # PRoot 5.1 does not translate statx (Node's libuv uses it)
    launcher.append("--")
    return Sandbox(isolation, tools.shim, launcher)


def inside_env(env: dict[str, str], image: Image) -> dict[str, str]:
    """The environment with ``PATH`` as the container sees it (no host paths of the image)."""
    if image.root is None or "PATH" not in env:
        return env
    prefix = str(image.root)
    path = ":".join(d for d in env["PATH"].split(":") if not d.startswith(prefix))
    return {**env, "PATH": path}


def port_event(line: str) -> str | None:
    """The event message for a network shim report of a port in use, or None for others."""
    kind, _, rest = line.partition(" ")
    if kind != "EADDRINUSE":
        return None
    fields = rest.split()
    address = fields[0] if fields else "?"
    host, _, port = address.rpartition(":")
    info = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    shown = "all addresses" if host in ("0.0.0.0", "::", "") else host
    return (
        f"port {port} ({shown}) is already in use in this pod: {info.get('comm', '?')} "
        f"(pid {info.get('pid', '?')}) could not listen on it; containers of a pod share one "
        "network, so each port can be used by one of them only"
    )
