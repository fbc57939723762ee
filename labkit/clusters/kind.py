"""kind as a cluster target: Docker Engine builds, ``kind load docker-image``, a 3-node cluster.

labkit drives the ``kind`` command line (as a user would) and keeps the cluster's kubeconfig
in ``$LABKIT_HOME/kind/<name>.kubeconfig``, so the user's own kubeconfig is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

from labkit.clusters.base import ClusterBackend, ClusterInfo
from labkit.errors import EngineError, LabWarning, TargetError
from labkit.images.builders import DockerImageBuilder
from labkit.shared.layout import kind_dir

CLUSTER_CONFIG = """\
# labkit: one control plane and two workers
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
- role: worker
"""
EMBEDDED_HINT = "or use labkit's embedded cluster, which needs neither: labkit.connect('embedded')"
CREATE_TIMEOUT = 600.0


def is_latest(tag: str) -> bool:
    """Whether an image reference means ``:latest`` (said or implied) and has no digest."""
    if "@" in tag:
        return False
    name = tag.rsplit("/", 1)[-1]
    return ":" not in name or name.endswith(":latest")


def latest_warning(tag: str) -> str:
    """What to tell a learner who loads a ``:latest`` image into kind."""
    return (
        f'image "{tag}" is :latest: Kubernetes then pulls it on every start (imagePullPolicy: Always), '
        "and kind's nodes cannot pull an image that was only loaded into them, so its pods stay in "
        "ErrImagePull. Tag it with a version (e.g. posts:1.0), or set imagePullPolicy: IfNotPresent."
    )


class KindBackend(ClusterBackend):
    """A kind cluster named ``name`` (default "labkit"): created with 3 nodes if absent."""

    name = "kind"
    has_load_balancer = False

    def __init__(self, cluster: str = "labkit") -> None:
        self.cluster = cluster
        self.dir = kind_dir()

    @property
    def kubeconfig_path(self) -> Path:
        """Where labkit keeps this cluster's kubeconfig."""
        return self.dir / f"{self.cluster}.kubeconfig"

    def ensure_running(self) -> None:
        """Check Docker and kind, create the cluster if kind does not list it, write its kubeconfig."""
        self._check_engine()
        if self.cluster not in self._kind("get", "clusters").split():
            self.dir.mkdir(parents=True, exist_ok=True)
            config = self.dir / f"{self.cluster}.yaml"
            config.write_text(CLUSTER_CONFIG)
            self._kind("create", "cluster", "--name", self.cluster, "--config", str(config),
                       "--kubeconfig", str(self.kubeconfig_path), timeout=CREATE_TIMEOUT)  # fmt: skip
        self.dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path.write_text(self._kind("get", "kubeconfig", "--name", self.cluster))

    def describe(self) -> ClusterInfo:
        """kind names the context ``kind-<cluster>``."""
        return ClusterInfo(f"kind-{self.cluster}", f"kind-{self.cluster}", self.kubeconfig_path)

    def image_builder(self) -> DockerImageBuilder:
        """The Docker Engine, whose images ``kind load`` copies into the nodes."""
        return DockerImageBuilder()

    def load_image(self, tag: str) -> None:
        """``kind load docker-image TAG`` into every node; warns about ``:latest``."""
        if is_latest(tag):
            warnings.warn(latest_warning(tag), LabWarning, stacklevel=3)
        self._kind("load", "docker-image", tag, "--name", self.cluster, timeout=CREATE_TIMEOUT)

    def _check_engine(self) -> None:
        from labkit.images.docker_runner import connect

        try:
            connect(timeout=10).close()
        except EngineError as err:
            raise TargetError(
                f"kind runs its nodes as Docker containers, but no Docker Engine answers. {err.message}",
                f"start Docker (as root in this repository: `bash .ci/docker`), {EMBEDDED_HINT}",
            ) from err

    def _kind(self, *args: str, timeout: float = 60.0) -> str:
        binary = shutil.which("kind")
        if binary is None:
            raise TargetError(
                "Docker is running, but the kind command is not installed (no `kind` on PATH)",
                "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), "
                + EMBEDDED_HINT,
            )
        try:
            done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise TargetError(f"`kind {' '.join(args)}` did not finish within {timeout:.0f} s") from err
        if done.returncode != 0:
            raise TargetError(
                f"`kind {' '.join(args)}` failed: {(done.stderr or done.stdout).strip()}",
                "kind's message above says why; `kind get clusters` lists the clusters it knows",
            )
        return done.stdout
