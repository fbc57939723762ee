"""The embedded builder's cache keys: a chain of hashes, one link per build step.

A stage's first key comes from its base: a built image's ID (:func:`image_key`) or a catalog
base's own key (:func:`base_key`). Every later step's key is its parent's key and the step's
*material* (:func:`step_key`): the instruction after ARG/ENV substitution and, for COPY and
ADD, a hash of the files it copies. A step whose key is in the layer cache is not run, and a
change gives a new key from that step on. ``--no-cache`` mixes a fresh :func:`salt` into the
first key of every stage, so no key of the build is found.
"""

from __future__ import annotations

import hashlib
import os


def digest(*parts: str) -> str:
    """The SHA-256 (hex) of ``parts`` joined with NUL bytes."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def salt(no_cache: bool) -> str:
    """What ``--no-cache`` mixes into a stage's first key: random, or "" to use the cache."""
    return os.urandom(8).hex() if no_cache else ""


def image_key(image_id: str, salt: str) -> str:
    """The first key of a stage built FROM an image labkit built."""
    return digest("image", image_id, salt)


def base_key(catalog_key: str, salt: str) -> str:
    """The key of the FROM step of a stage on a catalog base (python, busybox, scratch, ...)."""
    return digest(catalog_key, salt)


def step_key(parent: str, material: str) -> str:
    """The key of a step: its parent's key and what the step depends on."""
    return digest(parent, material)
