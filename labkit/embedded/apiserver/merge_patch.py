"""JSON merge patch (``application/merge-patch+json``, RFC 7386): maps merge, null deletes, lists replace."""

from __future__ import annotations

import copy
from typing import Any

from labkit.embedded.apiserver.patch_errors import PatchError, json_type


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            target[key] = _merge_into(current if isinstance(current, dict) else {}, value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """``original`` with a JSON merge patch (RFC 7386) applied: maps merge, null deletes, lists replace."""
    if not isinstance(patch, dict):
        raise PatchError(f"a merge patch must be a JSON object, not {json_type(patch)}")
    return _merge_into(copy.deepcopy(original), patch)
