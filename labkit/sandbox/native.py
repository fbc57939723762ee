"""Build labkit's two native helpers once per machine, and describe how to drive them.

``native_tools(cache_dir)`` compiles ``native/netshim.c`` and ``native/launcher.c`` with the
host's C compiler (``$CC``, else ``cc``) into ``cache_dir``, under names holding a hash of the
source, the flags, the compiler's version and the machine, and returns the cached files
without compiling when they are there (and from memory on later calls in one process).

**netshim** (``NativeTools.shim``) is an LD_PRELOAD library. Loaded into every dynamically
linked program of a pod (through ``LD_PRELOAD`` or ``/etc/ld.so.preload``), it gives the pod
its own ports, localhost and hostname. It reads the environment once, when it is loaded, and
copies the values. It never prints, and ignores malformed values (``shim_env`` checks them).

``LABKIT_POD_IP=127.244.1.5``
    Switches the shim on; unset, it passes every call through untouched.
    ``bind()`` to ``0.0.0.0``/``127.0.0.1`` binds the pod IP; to ``::``/``::1`` binds
    ``::ffff:<pod ip>`` with IPV6_V6ONLY cleared (an IPv6-only socket the app asked for, as
    nginx's ``listen [::]:80``, is parked on ``[::1]:0`` instead, so that it takes no port).
    ``connect()``/``sendto()``/``sendmsg()`` to ``127.0.0.1``, ``0.0.0.0``, ``::1``, ``::``,
    ``::ffff:127.0.0.1`` go to the pod IP. ``getsockname()`` on a rewritten socket returns
    what the app asked for (with the real port when it asked for port 0). ``listen()`` on an
    unbound socket first binds it as ``bind(("", 0))`` would, so that it lands on the pod IP.
``LABKIT_PORT_OFFSET=N`` and ``LABKIT_CLUSTER_NETS=127.244.0.0/16,127.96.0.0/16``
    Ports 1..1023 on a cluster address (in one of the IPv4 CIDRs, v4-mapped IPv6 included,
    or the pod IP) become ``port+N`` for bind, connect, sendto and sendmsg; getsockname,
    getpeername and the sources from recvfrom/recvmsg show ``port-N`` for real ports
    N+1..N+1023 on cluster addresses. 0 or unset: off.
``LABKIT_LOOPBACK_ONLY=1``
    connect/sendto/sendmsg to an address outside 127.0.0.0/8, ``::1`` and
    ``::ffff:127.0.0.0/104`` fail with ENETUNREACH, sending nothing.
``LABKIT_HOSTNAME=web-5d9c-abcde``
    ``gethostname()`` and ``uname().nodename`` return it (cut to 63 bytes).
``LABKIT_SHIM_REPORT=/path/file``
    One line per event, appended with a single ``write()``; fields end at spaces, and an
    address is ``ip:port`` (split it at the last colon: ``:::4000`` is ``::`` port 4000)::

        EADDRINUSE <ip asked>:<port asked> pid=<pid> comm=<comm>
        BLOCKED <ip>:<port> pid=<pid> comm=<comm>
        LISTEN <ip asked>:<port asked> real=<real ip>:<real port> pid=<pid> comm=<comm>

    A parked IPv6-only socket reports ``LISTEN :::80 real=::1:<port>``: it listens, but no
    pod traffic can reach it (all of it is IPv4), so count the port by its IPv4 twin.
    ``comm`` is the process's name as in ``/proc/PID/comm``. Create the file beforehand,
    writable by the pod's user: a process that creates it makes it 0644 (under its umask).
    The file is opened (``O_APPEND|O_CREAT|O_CLOEXEC``) for each event and closed again, so
    forked and exec'd children report through their own ``open`` and no descriptor is held
    (none leaks into children, none can be confused with an app's own file).

Limits: the shim sees calls that go through the dynamic linker. libc's internal calls (its
DNS resolver's own sockets), raw ``syscall()``, io_uring and static binaries are not seen.
A program that clears its environment and then execs another one starts that one unshimmed.

**launcher** (``NativeTools.launcher``): ``launcher [--pdeathsig] [--no-new-privs]
[--no-statx] [--no-userns] -- PROGRAM ARGS...`` sets the options, then ``execvp``. See the
comment at the top of ``native/launcher.c``. ``--pdeathsig`` fires when the *thread* that
started the launcher ends, so start it from a thread that lives as long as the pod should.
It is linked statically when the C library allows it (``libc6-dev`` ships ``libc.a``), so
that it runs in any filesystem view (an image rootfs under PRoot, for example).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SOURCE_DIR = Path(__file__).with_name("native")

SHIM_FLAGS = ("-O2", "-shared", "-fPIC", "-Wall", "-Wextra")
SHIM_LIBS = ("-ldl", "-pthread")
LAUNCHER_FLAGS = ("-O2", "-Wall", "-Wextra")
_STATIC = ("-static",)
_COMPILE_TIMEOUT_S = 300

INSTALL_HINT = (
    "Install a C compiler and the C library headers: `apt-get install gcc libc6-dev` "
    "(Debian/Ubuntu); on Binder, add the lines `gcc` and `libc6-dev` to binder/apt.txt. "
    "Or point $CC at a working compiler."
)


class NativeToolsError(RuntimeError):
    """The native helpers cannot be built: no compiler, or the compiler failed."""


@dataclass(frozen=True)
class NativeTools:
    """Paths of the built helpers: the LD_PRELOAD network shim and the exec launcher."""

    shim: Path
    launcher: Path


_memo: dict[tuple[str, str], NativeTools] = {}
_lock = threading.Lock()


def native_tools(cache_dir: Path) -> NativeTools:
    """Return the built shim and launcher, compiling them into ``cache_dir`` if needed.

    Safe when several processes build at once (each compiles to a temporary file and
    renames it into place). Raises NativeToolsError, with what to install and the
    compiler's output, when no compiler works.
    """
    key = (os.fspath(cache_dir), os.environ.get("CC", ""))
    tools = _memo.get(key)
    if tools is not None and os.path.exists(tools.shim) and os.path.exists(tools.launcher):
        return tools
    with _lock:
        compiler = _compiler()
        version = _compiler_version(compiler)
        cache_dir = Path(cache_dir)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NativeToolsError(f"cannot create the cache directory {cache_dir}: {e}") from e
        shim = _build(compiler, version, cache_dir, "netshim.c", ".so", [SHIM_FLAGS], SHIM_LIBS)
        launcher = _build(
            compiler, version, cache_dir, "launcher.c", "", [LAUNCHER_FLAGS + _STATIC, LAUNCHER_FLAGS], ()
        )
        tools = NativeTools(shim=shim, launcher=launcher)
        _memo[key] = tools
        return tools


def _compiler() -> list[str]:
    """The compiler command: ``$CC`` split as a shell would (``ccache gcc``), else ``cc``."""
    cc = os.environ.get("CC", "").strip() or "cc"
    argv = shlex.split(cc)
    if shutil.which(argv[0]) is None:
        raise NativeToolsError(
            f"labkit builds its container helpers with a C compiler, and none was found "
            f"({cc!r} is not on PATH). {INSTALL_HINT}"
        )
    return argv


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LC_ALL="C")
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, env=env, timeout=_COMPILE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NativeToolsError(f"running `{shlex.join(argv)}` failed: {e}. {INSTALL_HINT}") from e


def _compiler_version(compiler: list[str]) -> str:
    done = _run([*compiler, "--version"])
    if done.returncode != 0:
        raise NativeToolsError(
            f"the C compiler does not work: `{shlex.join([*compiler, '--version'])}` exited "
            f"{done.returncode}. {INSTALL_HINT}\n{(done.stdout + done.stderr).strip()}"
        )
    return done.stdout.strip()


def _target(cache_dir: Path, stem: str, suffix: str, parts: Iterable[bytes]) -> Path:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return cache_dir / f"{stem}-{digest.hexdigest()[:16]}{suffix}"


def _build(
    compiler: list[str],
    version: str,
    cache_dir: Path,
    source_name: str,
    suffix: str,
    flag_choices: Sequence[Sequence[str]],
    libs: Sequence[str],
) -> Path:
    """Return the cached build of one source: the first of ``flag_choices`` that compiles."""
    source = SOURCE_DIR / source_name
    try:
        text = source.read_bytes()
    except OSError as e:
        raise NativeToolsError(f"labkit's source {source} is missing: {e}") from e
    stem = source_name.rsplit(".", 1)[0]
    targets = []
    for flags in flag_choices:
        parts = [text, version.encode(), platform.machine().encode(), *(f.encode() for f in compiler)]
        parts += [f.encode() for f in (*flags, "|", *libs)]
        targets.append(_target(cache_dir, stem, suffix, parts))
    for target in targets:
        if target.exists():
            return target
    output: str | None = ""
    for flags, target in zip(flag_choices, targets, strict=True):
        output = _compile(compiler, source, target, flags, libs)
        if output is None:
            return target
    raise NativeToolsError(f"compiling {source_name} failed. {INSTALL_HINT}\n{output}")


def _compile(
    compiler: list[str], source: Path, target: Path, flags: Sequence[str], libs: Sequence[str]
) -> str | None:
    """Compile into a temporary file and rename it to ``target``; the error text, or None."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise NativeToolsError(f"cannot write into the cache directory {target.parent}: {e}") from e
    os.close(fd)
    argv = [*compiler, *flags, "-o", tmp, str(source), *libs]
    try:
        done = _run(argv)
        if done.returncode != 0:
            return f"$ {shlex.join(argv)}\n{(done.stdout + done.stderr).strip()}"
        os.chmod(tmp, 0o755 if not target.suffix else 0o644)
        os.replace(tmp, target)
        return None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _ipv4_network(text: str) -> ipaddress.IPv4Network:
    """An IPv4 network, also from its v4-mapped IPv6 form (``::ffff:127.244.0.0/112``)."""
    try:
        net = ipaddress.ip_network(text, strict=False)
        if isinstance(net, ipaddress.IPv6Network):
            mapped = net.network_address.ipv4_mapped
            if mapped is None or net.prefixlen < 96:
                raise ValueError("not an IPv4 or v4-mapped IPv6 network")
            net = ipaddress.IPv4Network((mapped, net.prefixlen - 96), strict=False)
        return net
    except ValueError as e:
        raise ValueError(f"bad cluster network {text!r}: {e}") from e


def shim_env(
    pod_ip: str,
    *,
    port_offset: int = 0,
    cluster_nets: Sequence[str] = (),
    loopback_only: bool = False,
    hostname: str | None = None,
    report: Path | None = None,
) -> dict[str, str]:
    """The environment that switches the shim on for one container, checked.

    Raises ValueError for a pod IP outside 127.0.0.0/8, an offset outside 0..64512, a
    malformed network, or a hostname the shim would cut or that is not a DNS label.
    """
    ip = ipaddress.ip_address(pod_ip)
    if ip.version != 4 or not ip.is_loopback:
        raise ValueError(f"the pod IP must be an IPv4 loopback address (127.x.y.z), not {pod_ip!r}")
    if not 0 <= port_offset <= 65535 - 1023:
        raise ValueError(f"the port offset must be between 0 and {65535 - 1023}, not {port_offset}")
    nets = [str(_ipv4_network(net)) for net in cluster_nets]
    env = {"LABKIT_POD_IP": str(ip)}
    if port_offset:
        env["LABKIT_PORT_OFFSET"] = str(port_offset)
    if nets:
        env["LABKIT_CLUSTER_NETS"] = ",".join(nets)
    if loopback_only:
        env["LABKIT_LOOPBACK_ONLY"] = "1"
    if hostname is not None:
        if not 0 < len(hostname) <= 63 or not all(c.isalnum() or c in "-." for c in hostname):
            raise ValueError(f"the hostname must be 1 to 63 letters, digits, '-' or '.', not {hostname!r}")
        env["LABKIT_HOSTNAME"] = hostname
    if report is not None:
        env["LABKIT_SHIM_REPORT"] = os.fspath(report)
    return env
