"""Where a cluster keeps its state: one directory per cluster name.

``$LABKIT_HOME`` (default ``~/.labkit``) holds ``clusters/<name>/`` with the kubeconfig,
token, sqlite store, daemon log, pid file and ``cluster.json`` (node count, port).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")


def labkit_home() -> Path:
    """``$LABKIT_HOME`` or ``~/.labkit``."""
    return Path(os.environ.get("LABKIT_HOME") or Path.home() / ".labkit")


@dataclass
class ClusterConfig:
    """What a cluster is configured to be (saved in ``cluster.json``).

    The timings default to values that let a learner see effects in seconds; upstream's are
    in the comments.
    """

    name: str
    nodes: int = 3
    port: int = 0
    backoff_base: float = 10.0  # first crash-loop back-off, doubling (kubelet: 10 s)
    backoff_max: float = 300.0  # back-off cap (kubelet: 300 s)
    eviction_delay: int = 5  # tolerationSeconds for not-ready/unreachable nodes (admission: 300 s)
    node_grace: float = 2.0  # a stopped node's kubelet is missed this long before NotReady (40 s)
    runtime: str = "process"  # how containers run by default: "process" or "simulated"
    seed: int | None = None  # makes generated names and balancing repeatable
    balancing: str = "random"  # Services' default: "random" (kube-proxy iptables) or "round-robin" (IPVS)


class ClusterDir:
    """The state directory of one named cluster."""

    def __init__(self, name: str, home: Path | None = None) -> None:
        if not NAME_PATTERN.match(name):
            raise ValueError(
                f"invalid cluster name {name!r}: use 1-40 lower-case letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
        self.name = name
        self.path = (home or labkit_home()) / "clusters" / name

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig that points at this cluster."""
        return self.path / "kubeconfig"

    @property
    def db(self) -> Path:
        """The sqlite store."""
        return self.path / "store.db"

    @property
    def log(self) -> Path:
        """The daemon's log."""
        return self.path / "daemon.log"

    @property
    def pid_file(self) -> Path:
        """The running daemon's pid."""
        return self.path / "daemon.pid"

    @property
    def pods_dir(self) -> Path:
        """Where kubelets keep pod logs and working directories."""
        return self.path / "pods"

    @property
    def config_file(self) -> Path:
        """``cluster.json``."""
        return self.path / "cluster.json"

    def exists(self) -> bool:
        """True once the cluster has been created."""
        return self.config_file.exists()

    def load(self) -> ClusterConfig:
        """The saved configuration (defaults for a new cluster)."""
        if not self.config_file.exists():
            return ClusterConfig(self.name)
        saved = json.loads(self.config_file.read_text())
        known = {f.name for f in fields(ClusterConfig)}
        return ClusterConfig(**{k: v for k, v in saved.items() if k in known})

    def save(self, config: ClusterConfig) -> None:
        """Save the configuration."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(asdict(config), indent=2) + "\n")

    def token(self) -> str:
        """The API token, made on first use and kept private to the user."""
        path = self.path / "token"
        if not path.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    @property
    def context(self) -> str:
        """The kubeconfig context name (``labkit-<name>``, like kind's ``kind-<name>``)."""
        return f"labkit-{self.name}"

    @property
    def ca_file(self) -> Path:
        """The cluster CA's certificate, which signs the API server's."""
        return self.path / "ca.crt"

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
        for path in [self.path, *self.path.rglob("*")]:
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

    def pid(self) -> int | None:
        """The pid in the pid file, if any."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
