"""Image references (``posts:1.0``, ``registry.example.com:5000/me/posts@sha256:...``): one parser.

Docker's rules, as the builder, the image store, the kubelet and the cluster targets need them:
the registry is the first path component when it has a dot or a port or is ``localhost``; the
tag follows the last ``:`` of the last component; a digest follows ``@``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HUB_PREFIXES = ("docker.io/library/", "docker.io/", "index.docker.io/library/")


@dataclass(frozen=True)
class ImageRef:
    """An image reference taken apart."""

    registry: str | None  # "registry.example.com:5000", or None for Docker Hub short names
    repository: str  # everything before the tag or digest, registry included ("reg:5000/me/posts")
    tag: str | None  # "1.0", or None when the reference names none
    digest: str | None  # "sha256:...", or None

    @property
    def is_latest(self) -> bool:
        """Whether the reference means ``:latest`` (said or implied) and has no digest."""
        return self.digest is None and self.tag in (None, "latest")

    @property
    def short_repository(self) -> str:
        """The repository without Docker Hub's ``docker.io/library/`` prefix (``python``)."""
        for prefix in HUB_PREFIXES:
            if self.repository.startswith(prefix):
                return self.repository[len(prefix) :]
        return self.repository


def parse_reference(reference: str) -> ImageRef:
    """Take an image reference apart (no validation: the API server and builders check names)."""
    name, at, digest = reference.partition("@")
    head, _, last = name.rpartition("/")
    repo_last, colon, tag = last.partition(":")
    repository = f"{head}/{repo_last}" if head else repo_last
    first = name.partition("/")[0]
    registry = first if "/" in name and ("." in first or ":" in first or first == "localhost") else None
    return ImageRef(registry, repository, tag if colon else None, digest if at else None)


def split_reference(reference: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; the tag is ``latest`` when absent, and the
    ``docker.io/library/`` prefix is dropped. A digest counts as the tag."""
    ref = parse_reference(reference)
    return ref.short_repository, ref.digest or ref.tag or "latest"


def normalize(reference: str) -> str:
    """``repository:tag`` for a reference (``latest`` when it has no tag), ``repository@digest``
    for a digest."""
    repository, tag = split_reference(reference)
    return f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"


def requested_version(tag: str) -> str:
    """The version a tag asks for (``3.12`` of ``3.12-slim``, ``20`` of ``20-alpine``), or ""."""
    match = re.match(r"\d+(\.\d+)*", tag)
    return match.group(0) if match else ""


def version_matches(wanted: str, have: str) -> bool:
    """Whether ``have`` (``3.11.7``) is the ``wanted`` version or within it; any when none is wanted."""
    return not wanted or have == wanted or have.startswith(wanted + ".")
