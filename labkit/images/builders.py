"""Image builders as the Lab sees them: build a Dockerfile, and (where it can) run an image once.

A cluster backend (:mod:`labkit.clusters`) only says which builder its nodes can run images
from (:meth:`~labkit.clusters.base.ClusterBackend.image_builder`) and how a built image
reaches them (``load_image``). The builders themselves know nothing of clusters:

- :class:`EmbeddedImageBuilder`: labkit's daemonless builder, into the on-disk store the
  embedded cluster's kubelets run images from. It runs nothing itself: a quick run is a pod.
- :class:`DockerImageBuilder`: the Docker Engine (kind and kubeconfig targets). It runs a
  quick check as a container on the host network.
"""

from __future__ import annotations

import abc
import tempfile
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from labkit.images.models import BuildResult, ProgressCallback

if TYPE_CHECKING:
    from labkit.images.docker_builder import DockerBuilder
    from labkit.images.docker_runner import RunningContainer


class ImageBuilder(abc.ABC):
    """Builds images from a Dockerfile's text and a context directory."""

    name: str = ""  # "embedded" or "docker", as shown by %lab and in BuildResult.builder

    @abc.abstractmethod
    def build(
        self,
        dockerfile: str,
        tag: str,
        context: Path | None,
        *,
        build_args: Mapping[str, str] | None = None,
        no_cache: bool = False,
        progress: ProgressCallback | None = None,
    ) -> BuildResult:
        """Build ``dockerfile`` (its text) as ``tag``; ``context`` None means an empty context."""

    def run_once(self, tag: str, *, port: int | None = None) -> RunningContainer | None:
        """Run ``tag`` once for a quick check, with ``PORT`` set when ``port`` is given; None when
        this builder runs nothing itself (then the Lab runs the image as a pod)."""
        return None


class EmbeddedImageBuilder(ImageBuilder):
    """labkit's own builder: no daemon, no root; it writes the store under ``home``."""

    name = "embedded"

    def __init__(self, home: Path | None = None) -> None:
        self.home = home  # $LABKIT_HOME when None

    def build(
        self,
        dockerfile: str,
        tag: str,
        context: Path | None,
        *,
        build_args: Mapping[str, str] | None = None,
        no_cache: bool = False,
        progress: ProgressCallback | None = None,
    ) -> BuildResult:
        """Build into the store the embedded cluster's kubelets read."""
        from labkit.images import embedded_builder

        with tempfile.TemporaryDirectory(prefix="labkit-context-") as empty:
            return embedded_builder.build(
                context if context is not None else Path(empty),
                tag,
                dockerfile_text=dockerfile,
                build_args=dict(build_args or {}),
                no_cache=no_cache,
                progress=progress,
                home=self.home,
            )


class DockerImageBuilder(ImageBuilder):
    """The Docker Engine's builder; it connects on first use (EngineError if none answers)."""

    name = "docker"

    def build(
        self,
        dockerfile: str,
        tag: str,
        context: Path | None,
        *,
        build_args: Mapping[str, str] | None = None,
        no_cache: bool = False,
        progress: ProgressCallback | None = None,
    ) -> BuildResult:
        """Build with the engine (the image stays in the engine's store)."""
        return self._docker.build(
            dockerfile, context, tag=tag, build_args=build_args, no_cache=no_cache, progress=progress
        )

    def run_once(self, tag: str, *, port: int | None = None) -> RunningContainer:
        """A container on the host network; with a port, once it answers there."""
        return self._docker.run(tag, port=port)

    @cached_property
    def _docker(self) -> DockerBuilder:
        from labkit.images.docker_builder import DockerBuilder

        return DockerBuilder()
