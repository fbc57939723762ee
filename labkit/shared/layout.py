"""Where labkit keeps its state: ``$LABKIT_HOME`` and one directory per embedded cluster.

``$LABKIT_HOME`` (default ``~/.labkit``) holds ``clusters/<name>/`` (kubeconfig, token, sqlite
store, daemon log, pid file and ``cluster.json``), ``images/`` (the image store) and ``kind/``
(the kubeconfigs of kind clusters labkit made). The client writes ``cluster.json`` before it
starts a daemon; the daemon reads it, and writes everything else.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
DAEMON_MODULE = "labkit.embedded.daemon"  # what the client runs with ``python -m``


def labkit_home() -> Path:
    """``$LABKIT_HOME`` or ``~/.labkit``."""
    return Path(os.environ.get("LABKIT_HOME") or Path.home() / ".labkit")


def kind_dir(home: Path | None = None) -> Path:
    """Where the kind target keeps its cluster configs and kubeconfigs."""
    return (home or labkit_home()) / "kind"


def cluster_names(home: Path | None = None) -> list[str]:
    """Names of the embedded clusters that have state under ``home``."""
    root = (home or labkit_home()) / "clusters"
    return sorted(p.name for p in root.iterdir() if (p / "cluster.json").exists()) if root.exists() else []


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
    addresses: int | None = None  # its loopback address block (embedded/addresses.py), set at first start


class ClusterLayout:
    """The state directory of one named cluster: its paths, its configuration and its pid."""

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

    @property
    def context(self) -> str:
        """The kubeconfig context name (``labkit-<name>``, like kind's ``kind-<name>``)."""
        return f"labkit-{self.name}"

    @property
    def ca_file(self) -> Path:
        """The cluster CA's certificate, which signs the API server's."""
        return self.path / "ca.crt"

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

    def pid(self) -> int | None:
        """The pid in the pid file, if any."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
