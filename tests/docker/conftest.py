"""Fixtures for the Docker Engine tests: a reachable engine and a base image made from local files.

No registry can be reached, so the base image ``labkit-busybox:1`` is imported from Debian's
busybox-static binary (``/bin/busybox``) by ``DockerBuilder.import_busybox_base``. Without an
engine or that binary the tests skip, except under CI=true, where they fail: CI starts dockerd
with ``.ci/docker`` before the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import NoReturn

import docker
import docker.errors
import pytest

from labkit.errors import EngineError, UsageError
from labkit.images.docker_builder import DockerBuilder
from labkit.images.docker_runner import connect
from tests.conftest import IN_CI


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI=true, where the Docker tests must run."""
    if IN_CI:
        pytest.fail(f"{reason}\n(CI=true: the Docker tests must run; .ci/docker installs and starts dockerd)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client for the machine's Docker Engine."""
    try:
        client = connect(timeout=60)
    except EngineError as err:
        unavailable(str(err))
    yield client
    client.close()


@pytest.fixture(scope="session")
def builder(docker_client: docker.DockerClient) -> Iterator[DockerBuilder]:
    """One builder for the session (its containers are removed at the end)."""
    with DockerBuilder(connect()) as made:
        yield made


@pytest.fixture(scope="session")
def base_image(builder: DockerBuilder) -> str:
    """The local base image, imported from busybox-static once per engine."""
    try:
        return builder.import_busybox_base()
    except UsageError as err:
        unavailable(str(err))


@pytest.fixture(scope="session")
def new_tag(docker_client: docker.DockerClient) -> Iterator[Callable[[], str]]:
    """Makes unique image tags. When the session ends it removes those images, and the untagged
    ones the session left (stages of multi-stage builds, steps of failed builds)."""
    made: list[str] = []
    untagged_before = {image.id for image in docker_client.images.list(filters={"dangling": True})}

    def make() -> str:
        made.append(f"labkit-test-{uuid.uuid4().hex[:10]}:1")
        return made[-1]

    yield make
    for tag in made:
        _remove(docker_client, tag)
    for image in docker_client.images.list(filters={"dangling": True}):
        if image.id not in untagged_before:
            _remove(docker_client, image.id)


def _remove(client: docker.DockerClient, image: str) -> None:
    """Remove an image that may already be gone (or still be the parent of another)."""
    try:
        client.images.remove(image, force=True)
    except docker.errors.APIError:  # NotFound too
        pass


BUSYBOX_136 = "busybox:1.36"


@pytest.fixture(scope="session")
def busybox_136(docker_client: docker.DockerClient, base_image: str) -> Iterator[str]:
    """``busybox:1.36`` in the engine: the local base under the name a Dockerfile for both builders
    uses (the embedded builder's catalog knows ``busybox``). A tag made here is removed at the end;
    an image already under that name is used as it is."""
    try:
        docker_client.images.get(BUSYBOX_136)
        made = False
    except docker.errors.ImageNotFound:
        repository, _, tag = BUSYBOX_136.partition(":")
        docker_client.images.get(base_image).tag(repository, tag)
        made = True
    yield BUSYBOX_136
    if made:
        try:
            docker_client.images.remove(BUSYBOX_136)  # the tag only: the base keeps its own
        except docker.errors.APIError:
            pass
