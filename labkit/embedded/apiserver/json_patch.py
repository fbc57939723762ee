"""JSON patch (``application/json-patch+json``, RFC 6902): a list of operations, applied with ``jsonpatch``.

A failing ``test`` and an operation that cannot apply to this object are 422s; a malformed
operation is a 400; more than kube-apiserver's 10000 operations is a 413.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer

from labkit.embedded.apiserver.patch_errors import PatchError, json_type

# kube-apiserver's limit on the operations in one JSON patch (413 above it).
_MAX_JSON_PATCH_OPERATIONS = 10000

_NOTHING = object()


def _apply_operation(document: Any, operation: Any, index: int) -> Any:
    if not isinstance(operation, dict):
        raise PatchError(f"json patch operation {index}: must be an object, not {json_type(operation)}")
    label = f"json patch operation {index} ({operation.get('op')} {operation.get('path')})"
    try:
        return jsonpatch.JsonPatch([operation]).apply(document, in_place=True)
    except jsonpatch.JsonPatchTestFailed as error:
        found = jsonpointer.resolve_pointer(document, operation["path"], _NOTHING)
        have = "nothing is there" if found is _NOTHING else f"the value is {json.dumps(found)}"
        raise PatchError(
            f"{label}: test failed: {have}, expected {json.dumps(operation['value'])}", 422
        ) from error
    except jsonpatch.InvalidJsonPatch as error:
        raise PatchError(f"{label}: {error}") from error
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        raise PatchError(f"{label}: {error}", 422) from error


def json_patch(original: dict[str, Any], operations: Any) -> dict[str, Any]:
    """``original`` with a JSON patch (RFC 6902) applied, one operation after another."""
    if not isinstance(operations, list):
        raise PatchError(f"a json patch must be a JSON array of operations, not {json_type(operations)}")
    if len(operations) > _MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {_MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(operations)}",
            413,
        )
    document: Any = copy.deepcopy(original)
    for index, operation in enumerate(operations):
        document = _apply_operation(document, operation, index)
    if not isinstance(document, dict):
        raise PatchError(f"the patched object must be a JSON object, not {json_type(document)}", 422)
    return document
