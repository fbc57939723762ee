"""Any existing kubeconfig context as a cluster target.

labkit cannot put images on such a cluster's nodes: an image built here must be pushed to a
registry the cluster can pull from, and the user names it in the tag
(``registry.example.com/me/posts:1.0``). A tag without a registry is refused before building.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import yaml

from labkit.clusters.base import ClusterBackend, ClusterInfo
from labkit.errors import TargetError, UsageError
from labkit.images.builders import DockerImageBuilder


def kubeconfig_file() -> Path:
    """The user's kubeconfig: the first file ``$KUBECONFIG`` names, else ``~/.kube/config``."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(listed[0]) if listed else Path.home() / ".kube" / "config"


def registry_of(tag: str) -> str | None:
    """The registry host an image reference names, or None (a Docker Hub short name)."""
    first, slash, _ = tag.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


class KubeconfigBackend(ClusterBackend):
    """A context of the user's kubeconfig (its current context by default)."""

    name = "kubeconfig"

    def __init__(self, context: str | None = None, kubeconfig: Path | None = None) -> None:
        self.path = kubeconfig or kubeconfig_file()
        self.context = context

    def ensure_running(self) -> None:
        """Check that the kubeconfig and the context exist (labkit does not start such clusters)."""
        self._entry()

    def describe(self) -> ClusterInfo:
        """The context's cluster entry, the context and the user's kubeconfig file."""
        name, entry = self._entry()
        return ClusterInfo(str(entry.get("cluster", "")), name, self.path)

    def image_builder(self) -> DockerImageBuilder:
        """The Docker Engine, which builds and then pushes to the registry the tag names."""
        return DockerImageBuilder()

    def check_tag(self, tag: str) -> None:
        """A tag must name a registry: the cluster pulls from there, it cannot see this machine."""
        self._require_registry(tag)

    def load_image(self, tag: str) -> None:
        """Push the image to the registry its tag names."""
        self._require_registry(tag)
        from labkit.images.docker_runner import connect, converted

        repository, _, version = tag.rpartition(":") if ":" in tag.rsplit("/", 1)[-1] else (tag, "", "")
        with contextlib.closing(connect()) as client, converted():
            for event in client.images.push(repository, version or None, stream=True, decode=True):
                if "error" in event:
                    raise TargetError(
                        f"pushing {tag} failed: {event['error']}",
                        "log in to the registry first (`docker login HOST`) and check the name",
                    )

    def _require_registry(self, tag: str) -> None:
        if registry_of(tag) is None:
            raise TargetError(
                f'image "{tag}" names no registry, and a kubeconfig cluster cannot see images built '
                "on this machine",
                f"tag it with a registry the cluster can pull from, e.g. registry.example.com/you/{tag}, "
                "and log in to it (`docker login`); or use labkit's embedded cluster or kind",
            )

    def _entry(self) -> tuple[str, dict[str, Any]]:
        """The context to use and its entry, read with the official client's kubeconfig loader."""
        from kubernetes.config import ConfigException
        from kubernetes.config.kube_config import KubeConfigMerger

        if not self.path.is_file():
            raise TargetError(
                f"no kubeconfig at {self.path}",
                "set KUBECONFIG to your kubeconfig file, "
                "or use the embedded cluster: labkit.connect('embedded')",
            )
        try:
            merged = KubeConfigMerger(str(self.path)).config
        except yaml.YAMLError as err:
            raise TargetError(f"the kubeconfig {self.path} is not valid YAML: {err}") from err
        except (ConfigException, OSError) as err:
            raise TargetError(f"cannot read the kubeconfig {self.path}: {err}") from err
        if merged is None or not hasattr(merged, "safe_get"):
            raise TargetError(f"the kubeconfig {self.path} holds no configuration")
        name = self.context or merged.safe_get("current-context")
        contexts = {
            c.safe_get("name"): c.safe_get("context") or {} for c in merged.safe_get("contexts") or []
        }
        if not name:
            raise UsageError(
                f"the kubeconfig {self.path} has no current context",
                "name one: labkit.connect('kubeconfig', context=...); "
                f"it has: {', '.join(map(str, contexts))}",
            )
        if name not in contexts:
            raise UsageError(
                f'the kubeconfig {self.path} has no context "{name}"',
                f"its contexts: {', '.join(map(str, contexts)) or '(none)'}",
            )
        return str(name), dict(contexts[name])

