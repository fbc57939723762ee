"""Query parameters and headers checked as kube-apiserver decodes its option structs.

``ListOptions``, ``CreateOptions``, ``PatchOptions`` and ``DeleteOptions`` are decoded from the
query string with Go's ``strconv`` rules, then validated (``apimachinery/pkg/apis/meta/v1/
validation``). A value that does not decode is a 400 carrying strconv's message; one that
decodes but is not allowed is a 422 on the options kind. The ``Accept`` header is negotiated
the same way: a client that accepts none of the server's media types gets 406.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from aiohttp import web

from labkit.embedded.apiserver.status import ApiError, bad_request

FIELD_MANAGER_MAX = 128
PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan", "nil")
MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_ACCEPTABLE = {*MEDIA_TYPES, "*/*", "application/*", "application/json-patch+json"}
_INT = re.compile(r"^[+-]?[0-9]+$")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_int64(name: str, text: str) -> int:
    """``strconv.ParseInt(text, 10, 64)``; 400 with its message otherwise."""
    if not _INT.match(text):
        raise bad_request(f'strconv.ParseInt: parsing "{text}": invalid syntax (the {name} parameter)')
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise bad_request(f'strconv.ParseInt: parsing "{text}": value out of range (the {name} parameter)')
    return value


def parse_bool(name: str, text: str) -> bool:
    """``strconv.ParseBool``; 400 with its message otherwise."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise bad_request(f'strconv.ParseBool: parsing "{text}": invalid syntax (the {name} parameter)')


def _invalid_options(kind: str, field: str, message: str, reason: str = "FieldValueInvalid") -> ApiError:
    return ApiError(
        422,
        f'{kind}.meta.k8s.io "" is invalid: {field}: {message}',
        "Invalid",
        {
            "group": "meta.k8s.io",
            "kind": kind,
            "causes": [{"reason": reason, "message": message, "field": field}],
        },
    )


def check_field_manager(kind: str, manager: str) -> None:
    """``ValidateFieldManager``: at most 128 bytes of printable characters."""
    if len(manager.encode()) > FIELD_MANAGER_MAX:
        raise _invalid_options(
            kind,
            "fieldManager",
            f"Too long: may not be more than {FIELD_MANAGER_MAX} bytes",
            "FieldValueTooLong",
        )
    if not manager.isprintable():
        raise _invalid_options(
            kind,
            "fieldManager",
            f"Invalid value: {json.dumps(manager)}: must only contain printable characters",
        )


def write_options(request: web.Request, kind: str, *, apply: bool = False) -> None:
    """``CreateOptions``/``UpdateOptions``/``PatchOptions``: fieldManager, and ``force`` for patches
    (only an apply patch may carry it; an apply patch needs a fieldManager)."""
    manager = request.query.get("fieldManager", "")
    check_field_manager(kind, manager)
    if "force" in request.query and kind == "PatchOptions":
        parse_bool("force", request.query["force"])
        if not apply:
            raise _invalid_options(
                kind, "force", "Forbidden: may not be specified for non-apply patch", "FieldValueForbidden"
            )
    if apply and not manager:
        raise _invalid_options(
            kind, "fieldManager", "Required value: is required for apply patch", "FieldValueRequired"
        )


def delete_options(options: dict[str, object]) -> None:
    """``ValidateDeleteOptions``: a known propagationPolicy, not together with orphanDependents."""
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in PROPAGATION_POLICIES[:3]:
        supported = ", ".join(f'"{p}"' for p in PROPAGATION_POLICIES)
        raise _invalid_options(
            "DeleteOptions",
            "propagationPolicy",
            f"Unsupported value: {json.dumps(policy)}: supported values: {supported}",
            "FieldValueNotSupported",
        )
    if policy is not None and options.get("orphanDependents") is not None:
        raise _invalid_options(
            "DeleteOptions",
            "propagationPolicy",
            "Invalid value: "
            + json.dumps(policy)
            + ": orphanDependents and deletionPropagation cannot be both set",
        )


def _continue(token: str) -> None:
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("invalid continue token: continue key is not valid: illegal base64 data") from None
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("v") != "meta.k8s.io/v1":
        raise bad_request(
            f'invalid continue token: continue key "{token:.60}" is not valid: server does not '
            "recognize this encoded version"
        )
    raise ApiError(
        410,
        "The provided continue parameter is too old to display a consistent list result. You can "
        "start a new list without the continue parameter.",
        "Expired",
    )


def list_options(request: web.Request, *, watch: bool = False) -> float | None:
    """Check ``ListOptions`` (limit, continue, resourceVersion, resourceVersionMatch,
    timeoutSeconds); returns the watch timeout in seconds, if any."""
    query = request.query
    if "limit" in query:
        parse_int64("limit", query["limit"])
    rv = query.get("resourceVersion", "")
    if rv and not rv.isdigit():
        raise bad_request(
            f'invalid resource version: resourceVersion: Invalid value: "{rv:.60}": must be a number'
        )
    match = query.get("resourceVersionMatch", "")
    if match and match not in ("NotOlderThan", "Exact"):
        raise _invalid_options(
            "ListOptions",
            "resourceVersionMatch",
            f'Unsupported value: {json.dumps(match)}: supported values: "Exact", "NotOlderThan"',
            "FieldValueNotSupported",
        )
    if query.get("continue") and not watch:
        _continue(query["continue"])
    timeout = query.get("timeoutSeconds")
    if timeout is None or timeout == "":
        return None
    seconds = parse_int64("timeoutSeconds", timeout)
    return float(seconds) if seconds > 0 else None


def _media_types(accept: str) -> list[str]:
    return [part.split(";", 1)[0].strip().lower() for part in accept.split(",") if part.strip()]


def negotiate(request: web.Request) -> None:
    """406 when the ``Accept`` header names none of the media types the server writes."""
    accept = request.headers.get("Accept", "")
    if not accept.strip():
        return
    if any(media in _ACCEPTABLE for media in _media_types(accept)):
        return
    raise ApiError(
        406, "only the following media types are accepted: " + ", ".join(MEDIA_TYPES), "NotAcceptable"
    )
