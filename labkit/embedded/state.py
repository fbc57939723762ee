"""What the daemon writes in its state directory: the API token and the kubeconfig.

The layout of ``$LABKIT_HOME/clusters/<name>/`` and ``cluster.json`` are shared with the client
side, in :mod:`labkit.shared.layout`.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

import yaml

from labkit.shared.layout import ClusterConfig, ClusterLayout, labkit_home

__all__ = ["ClusterConfig", "ClusterDir", "labkit_home"]


class ClusterDir(ClusterLayout):
    """The state directory of one named cluster, as the daemon writes it (the layout itself,
    ``cluster.json`` and the pid file are :class:`~labkit.shared.layout.ClusterLayout`'s)."""

    def token(self) -> str:
        """The API token, made on first use and kept private to the user."""
        path = self.path / "token"
        if not path.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def write_kubeconfig(self, port: int) -> None:
        """Write the kubeconfig for the server on https://127.0.0.1:``port``."""
        ctx = self.context
        ca_data = base64.b64encode(self.ca_file.read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": ctx,
                    "cluster": {"server": f"https://127.0.0.1:{port}", "certificate-authority-data": ca_data},
                }
            ],
            "users": [{"name": ctx, "user": {"token": self.token()}}],
            "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx, "namespace": "default"}}],
            "current-context": ctx,
            "preferences": {},
        }
        tmp = self.kubeconfig.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        tmp.replace(self.kubeconfig)

    def server(self) -> str | None:
        """The server URL in the kubeconfig, if there is one."""
        if not self.kubeconfig.exists():
            return None
        config = yaml.safe_load(self.kubeconfig.read_text())
        return str(config["clusters"][0]["cluster"]["server"])

    def _own_files(self) -> list[Path]:
        """Everything below the directory but what lies inside ``pods`` (the containers' own
        files, whose modes the containers rely on; the 0700 ``pods`` directory shuts out
        everyone else)."""
        found: list[Path] = []
        for base, dirs, files in os.walk(self.path):
            here = Path(base)
            if here == self.pods_dir:
                dirs[:] = []
                continue
            found += [here / name for name in dirs + files]
        return found

    def make_private(self) -> list[str]:
        """Make the state private to its owner: group and other lose every permission on the
        directory and everything below it (0755 -> 0700, 0644 -> 0600), and ``store.db`` is
        created 0600 so that sqlite gives its WAL and shared-memory files the same mode.
        Returns a warning for each path that could not be fixed (not the owner's, say)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.pods_dir.mkdir(mode=0o700, exist_ok=True)
        if not self.db.exists():
            os.close(os.open(self.db, os.O_WRONLY | os.O_CREAT, 0o600))
        warnings: list[str] = []
        for path in [self.path, *self._own_files()]:
            try:
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    continue
                mode = stat.S_IMODE(info.st_mode)
                if mode & 0o077:  # 0755 -> 0700, 0644 -> 0600: the owner keeps what it had
                    os.chmod(path, mode & ~0o077)
            except OSError as e:
                warnings.append(
                    f"{path} is readable by other users and cannot be made private ({e.strerror}): "
                    f"run chmod -R go-rwx {self.path}"
                )
        return warnings
