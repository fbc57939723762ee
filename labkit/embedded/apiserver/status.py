"""API errors and the Kubernetes ``Status`` objects they turn into.

Every failure the API server reports is an :class:`ApiError`; the HTTP layer turns
it into the JSON ``Status`` a real kube-apiserver sends, so kubectl and the Python
client print the same messages they print against a real cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labkit.embedded.resources import ResourceType

_HTTP_REASON = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class Cause:
    """One field-level problem inside a 422 Invalid (``details.causes[]``)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        """The JSON form kubectl reads."""
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class ApiError(Exception):
    """A failed API request, carrying everything a ``Status`` needs."""

    code: int
    message: str
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if not self.reason:
            self.reason = _HTTP_REASON.get(self.code, "Unknown")

    def to_status(self) -> dict[str, Any]:
        """The ``Status`` object for this error."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(rt: ResourceType | None, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if rt is not None:
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    """404: ``pods "x" not found``."""
    return ApiError(404, f'{rt.qualified} "{name}" not found', "NotFound", _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    """409 AlreadyExists: ``deployments.apps "web" already exists``."""
    return ApiError(409, f'{rt.qualified} "{name}" already exists', "AlreadyExists", _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str | None = None) -> ApiError:
    """409 Conflict: the object changed since the client read it."""
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
        "Conflict",
        _details(rt, name),
    )


def invalid(rt: ResourceType, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid with one cause per bad field, as ``kubectl`` lists them."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    text = parts[0] if len(parts) == 1 else f"[{', '.join(parts)}]"
    details: dict[str, Any] = {"name": name, "kind": rt.kind, "causes": [c.to_dict() for c in causes]}
    if rt.group:
        details = {"name": name, "group": rt.group, "kind": rt.kind, "causes": details["causes"]}
    label = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return ApiError(422, f'{label} "{name}" is invalid: {text}', "Invalid", details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest with the given message."""
    return ApiError(400, message, "BadRequest")


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    """405 MethodNotAllowed."""
    return ApiError(405, message, "MethodNotAllowed")


def unsupported_media_type(content_type: str) -> ApiError:
    """415 for a body in a format this server cannot read."""
    return ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml, application/vnd.kubernetes.protobuf "
        f'(got "{content_type}")',
        "UnsupportedMediaType",
    )


def too_large(limit: int) -> ApiError:
    """413 for a body over the API server's limit."""
    return ApiError(413, f"Request entity too large: limit is {limit}", "RequestEntityTooLarge")


def expired(requested: int, oldest: int) -> ApiError:
    """410 Expired for a watch from a resourceVersion the history no longer holds."""
    return ApiError(410, f"too old resource version: {requested} ({oldest})", "Expired")


def unauthorized() -> ApiError:
    """401 for a request without the cluster's bearer token."""
    return ApiError(401, "Unauthorized", "Unauthorized")
