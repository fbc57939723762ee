"""Build images with a Docker Engine through the docker SDK, streaming progress as it happens.

:class:`DockerBuilder` parses the Dockerfile with labkit's parser
(:mod:`~labkit.images.dockerfile`) and refuses what the engine would refuse (a Dockerfile that
does not parse, a bad tag or target) before sending anything. It sends the context as a tar
(:mod:`~labkit.images.docker_context_tar`), and :mod:`~labkit.images.docker_progress` turns the
engine's output into :class:`BuildStep` events and labkit errors that name the Dockerfile line,
mapping the engine's step numbers to the parser's instructions. The result's history is the
engine's. Containers run on the host network (:mod:`~labkit.images.docker_runner`); a base
image can be made from this machine's busybox (:mod:`~labkit.images.busybox_base`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import docker
import docker.errors
from docker.models.images import Image as DockerImage
from docker.utils.build import match_tag

from labkit.errors import UsageError
from labkit.images.busybox_base import BUSYBOX_CONFIG, LOCAL_BASE, PT_INTERP, busybox_rootfs
from labkit.images.docker_context_tar import Context, context_root, context_tar
from labkit.images.docker_progress import OUTPUT_TAIL, BuildStream, EngineStep, engine_steps, refused, scan
from labkit.images.docker_runner import DockerRunner, RunningContainer, connect, converted
from labkit.images.dockerfile import Dockerfile, EmptyDockerfileError, parse
from labkit.images.models import BuildResult, HistoryEntry, ProgressCallback
from labkit.shared.imagestore import ImageConfig

Instruction = EngineStep
"""The old name of :class:`~labkit.images.docker_progress.EngineStep` (what :func:`scan` lists)."""

__all__ = [
    "BUSYBOX_CONFIG",
    "LOCAL_BASE",
    "OUTPUT_TAIL",
    "PT_INTERP",
    "Context",
    "DockerBuilder",
    "Instruction",
    "scan",
]


class DockerBuilder:
    """Builds images with a Docker Engine and runs containers from them for a quick check.

    Containers it starts are removed by :meth:`close`, on leaving a ``with`` block, or at exit.
    """

    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client or connect()
        self._runner = DockerRunner(self._client)

    def build(
        self,
        dockerfile: str,
        context: Context = None,
        *,
        tag: str = "",
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        no_cache: bool = False,
        progress: ProgressCallback | None = None,
    ) -> BuildResult:
        """Build ``dockerfile`` (its text) with ``context``; ``progress`` gets each step event live.

        Raises BuildError naming the Dockerfile line for a Dockerfile that does not parse and for
        a failing step (with its output and exit code), BaseImageError when FROM names an image
        the engine cannot get, UsageError for an empty Dockerfile, a bad tag, target or context,
        and EngineError when the engine is gone.
        """
        parsed = _parse(dockerfile)
        _check_request(parsed, tag, target)
        started = time.monotonic()
        stream = BuildStream(engine_steps(parsed), progress, base_cached=not no_cache)
        with (
            context_root(context) as root,
            context_tar(root, dockerfile) as (archive, name),
            converted(),
        ):
            try:
                for event in self._client.api.build(
                    fileobj=archive,
                    custom_context=True,
                    dockerfile=name,
                    tag=tag or None,
                    buildargs=dict(build_args or {}),
                    target=target,
                    nocache=no_cache,
                    rm=True,
                    forcerm=True,
                    pull=False,
                    decode=True,
                    timeout=None,
                ):
                    stream.feed(event)
            except docker.errors.APIError as err:
                raise refused(err) from err
        return self._result(stream, tag, time.monotonic() - started)

    def image_config(self, reference: str) -> ImageConfig:
        """What a container started from ``reference`` gets: entrypoint, cmd, env, workdir, ports."""
        with converted():
            config = self._client.images.get(reference).attrs.get("Config") or {}
        pairs = (item.partition("=") for item in config.get("Env") or [])
        env = tuple((key, value) for key, _, value in pairs)
        ports = sorted(int(p.split("/")[0]) for p in (config.get("ExposedPorts") or {}))
        return ImageConfig(
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            env=env,
            working_dir=config.get("WorkingDir") or "",
            exposed_ports=tuple(ports),
        )

    def import_busybox_base(self, reference: str = LOCAL_BASE, busybox: str = "/bin/busybox") -> str:
        """Make a base image from this machine's static busybox, for building with no registry.

        The image holds ``/bin/busybox``, a symlink per applet (``sh``, ``httpd``, ``nc``, ...)
        and an empty ``/tmp``; an image already under ``reference`` is kept. Returns ``reference``.
        """
        with converted():
            try:
                self._client.images.get(reference)
                return reference
            except docker.errors.ImageNotFound:
                pass
            repository, _, tag = reference.rpartition(":")
            self._client.api.import_image_from_data(
                busybox_rootfs(Path(busybox)), repository=repository, tag=tag, changes=BUSYBOX_CONFIG
            )
        return reference

    def remove_image(self, reference: str) -> None:
        """Remove an image (and its tag) from the engine."""
        with converted():
            self._client.images.remove(reference, force=True)

    def run(
        self,
        image: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        command: str | Sequence[str] | None = None,
        name: str | None = None,
        ready_timeout: float = 10.0,
    ) -> RunningContainer:
        """Run ``image`` on the host network with ``PORT`` set; with a port, wait until it answers."""
        return self._runner.run(
            image, port=port, env=env, command=command, name=name, ready_timeout=ready_timeout
        )

    def close(self) -> None:
        """Remove the containers this builder started and let go of the engine connection."""
        self._runner.close()
        self._client.close()

    def __enter__(self) -> DockerBuilder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _result(self, stream: BuildStream, tag: str, seconds: float) -> BuildResult:
        """The BuildResult for a finished build, from the engine's view of the image."""
        with converted():
            image = self._client.images.get(stream.image_id or stream.last_layer)
            history = _history(image)
        return BuildResult(
            tag=tag,
            id=str(image.id),
            size=int(image.attrs.get("Size") or 0),
            cache_hits=stream.cache_hits,
            steps=stream.counted,
            history=history,
            warnings=tuple(stream.warnings),
            builder=self.name,
            seconds=seconds,
        )


def _parse(dockerfile: str) -> Dockerfile:
    """The parsed Dockerfile; an empty one is a UsageError, as the engine's wording has it."""
    try:
        return parse(dockerfile)
    except EmptyDockerfileError:
        raise UsageError("The Dockerfile is empty", hint="Start it with FROM and a base image.") from None


def _check_request(parsed: Dockerfile, tag: str, target: str | None) -> None:
    """Refuse what the engine would refuse, with labkit's wording: before sending the context."""
    if tag and not match_tag(tag):
        raise UsageError(
            f"tag {tag!r} is not a valid image reference",
            hint="Use lower-case NAME[:VERSION], e.g. posts:1.0.",
        )
    if target is not None and target.lower() not in {s.label for s in parsed.stages}:
        named = sorted(s.name for s in parsed.stages if s.name)
        raise UsageError(
            f"target {target!r} is not a stage of this Dockerfile",
            hint=f"Its named stages: {', '.join(named) or 'none (name one with FROM ... AS NAME)'}.",
        )


def _history(image: DockerImage) -> tuple[HistoryEntry, ...]:
    """An image's history, oldest first, with the instruction that made each layer."""
    entries = []
    for row in reversed(image.history()):
        raw = str(row.get("CreatedBy") or "")
        size = int(row.get("Size") or 0)
        entries.append(
            HistoryEntry(
                created_by=_instruction_of(raw) or str(row.get("Comment") or ""),
                created=_rfc3339(row.get("Created")),
                size=size,
                empty_layer=size == 0 and "#(nop)" in raw,
            )
        )
    return tuple(entries)


def _instruction_of(created_by: str) -> str:
    """The instruction behind a classic-builder CreatedBy (``/bin/sh -c #(nop)  ENV A=1``)."""
    nop = "/bin/sh -c #(nop) "
    if created_by.startswith(nop):
        return created_by[len(nop) :].strip()
    return f"RUN {created_by}" if created_by else ""


def _rfc3339(seconds: Any) -> str:
    """RFC 3339 time for a Unix timestamp ("" when absent)."""
    if not isinstance(seconds, int | float) or seconds <= 0:
        return ""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
