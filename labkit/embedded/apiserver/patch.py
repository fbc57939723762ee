"""PATCH bodies applied the way kube-apiserver applies them, chosen by Content-Type.

Three content types are accepted, as kube-apiserver does for built-in kinds:

- ``application/strategic-merge-patch+json`` (SMP): maps merge, ``null`` deletes a key, and
  lists either merge element by element on a merge key or are replaced whole
  (:mod:`~labkit.embedded.apiserver.strategic_merge`, over the table of
  :mod:`~labkit.embedded.apiserver.merge_keys`).
- ``application/merge-patch+json`` (RFC 7386): maps merge, ``null`` deletes, lists are replaced
  (:mod:`~labkit.embedded.apiserver.merge_patch`).
- ``application/json-patch+json`` (RFC 6902): a list of operations, applied with ``jsonpatch``
  (:mod:`~labkit.embedded.apiserver.json_patch`).

Every failure is a :class:`~labkit.embedded.apiserver.patch_errors.PatchError` whose message
names the field at fault.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from labkit.embedded.apiserver.json_patch import json_patch
from labkit.embedded.apiserver.merge_patch import merge_patch
from labkit.embedded.apiserver.patch_errors import PatchError
from labkit.embedded.apiserver.strategic_merge import strategic_merge

_JSON_PATCH = "application/json-patch+json"
_MERGE_PATCH = "application/merge-patch+json"
_STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

_APPLIERS: dict[str, Callable[[dict[str, Any], Any, str], dict[str, Any]]] = {
    _JSON_PATCH: lambda original, patch, _kind: json_patch(original, patch),
    _MERGE_PATCH: lambda original, patch, _kind: merge_patch(original, patch),
    _STRATEGIC_MERGE_PATCH: strategic_merge,
}


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes, media_type: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except ValueError as error:
        raise PatchError(f"the {media_type} body is not valid JSON: {error}") from error


def apply_patch(original: dict[str, Any], body: bytes, content_type: str, kind: str) -> dict[str, Any]:
    """Apply a PATCH request body to ``original`` (an object of ``kind``), choosing by Content-Type.

    Parameters after ``;`` (``charset=utf-8``) are ignored. An unknown type raises a
    :class:`PatchError` with code 415; a body that is not JSON, 400.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    _applier(media_type)
    return apply_parsed(original, _parse_json(body, media_type), media_type, kind)


def apply_parsed(original: dict[str, Any], patch: Any, content_type: str, kind: str) -> dict[str, Any]:
    """Like :func:`apply_patch`, for a body the caller has parsed already."""
    return _applier(content_type.split(";", 1)[0].strip().lower())(original, patch, kind)


def _applier(media_type: str) -> Any:
    applier = _APPLIERS.get(media_type)
    if applier is None:
        accepted = ", ".join(_APPLIERS)
        raise PatchError(
            f"the body of the request was in an unknown format - accepted media types include: {accepted}",
            415,
        )
    return applier
