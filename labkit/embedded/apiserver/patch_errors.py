"""The error every PATCH body raises (:class:`PatchError`), and the JSON type names its messages use."""

from __future__ import annotations

from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied; str() is the message for a 400/422 Status.

    ``code`` is the HTTP status kube-apiserver answers with: 400 for a malformed patch,
    422 for a JSON patch operation that fails on this object, 413 for too many
    operations, 415 for a content type that is not a patch type.
    """

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)
