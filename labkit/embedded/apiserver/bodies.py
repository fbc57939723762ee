"""Reading request bodies: JSON, YAML or protobuf, within the API server's size limit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import yaml
from aiohttp import web

from labkit.embedded.apiserver import protobuf, shape, yamlbody
from labkit.embedded.apiserver.status import bad_request, too_large, unsupported_media_type

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's limit for one request body
OFF_LOOP = 32 * 1024  # bodies larger than this are decoded in a thread, not on the event loop

JSON_TYPES = {"application/json", ""}
YAML_TYPES = {"application/yaml", "application/apply-patch+yaml", "text/yaml", "application/x-yaml"}
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def content_type(request: web.Request) -> str:
    """The request's media type without parameters; '' when the client sent none."""
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower()


async def read_bytes(request: web.Request) -> bytes:
    """The whole raw body, refusing one over :data:`MAX_BODY` with 413."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large(MAX_BODY)
    chunks, total = [], 0
    while chunk := await request.content.read(1 << 16):
        total += len(chunk)
        if total > MAX_BODY:
            raise too_large(MAX_BODY)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes, what: str = "request body") -> Any:
    """Parse JSON, with a 400 that says where it broke, or which field holds what no object can."""
    try:
        value = json.loads(body, parse_int=shape.parse_int, parse_float=shape.parse_float)
    except RecursionError:
        raise bad_request(f"{what} is nested more than {shape.MAX_DEPTH} levels deep") from None
    except UnicodeDecodeError as e:
        raise bad_request(f"{what} is not valid UTF-8: {e}") from e
    except json.JSONDecodeError as e:
        raise bad_request(f"{what} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    shape.check(value, what)
    return value


def parse_yaml(body: bytes, what: str = "request body") -> Any:
    """Parse YAML (a superset of JSON), with a 400 that names the line; aliases are bounded."""
    try:
        value = yamlbody.load(body)
    except RecursionError:
        raise bad_request(f"{what} is nested more than {shape.MAX_DEPTH} levels deep") from None
    except yamlbody.AliasBomb as e:
        raise bad_request(f"{what} is not valid YAML: {e}") from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise bad_request(f"{what} is not valid YAML: {e.problem}{where}") from e
    except yaml.YAMLError as e:
        raise bad_request(f"{what} is not valid YAML: {e}") from e
    except ValueError as e:  # an integer literal too long to convert
        raise bad_request(f"{what} is not valid YAML: {e}") from e
    shape.check(value, what)
    return value


def decode_object(body: bytes, media_type: str) -> dict[str, Any]:
    """Decode an object body in any format the server accepts; 415 for others, 400 when malformed."""
    if media_type in JSON_TYPES:
        obj = parse_json(body)
    elif media_type in YAML_TYPES:
        obj = parse_yaml(body)
    elif media_type == protobuf.PROTOBUF_CONTENT_TYPE:
        try:
            obj = protobuf.decode(body)
        except protobuf.ProtobufError as e:
            raise bad_request(f"cannot decode protobuf body: {e}") from e
        shape.check(obj)
    else:
        raise unsupported_media_type(media_type)
    if not isinstance(obj, dict):
        raise bad_request(f"the request body must be an object, not {type(obj).__name__}")
    _drop_nulls(obj)
    return obj


def _drop_nulls(obj: dict[str, Any]) -> None:
    """Remove null members, as decoding into typed structs does (``annotations: null`` is no annotations)."""
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in [k for k, v in item.items() if v is None]:
                del item[key]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


async def read_object(request: web.Request) -> dict[str, Any]:
    """Read and decode an object body."""
    body = await read_bytes(request)
    if not body.strip():
        raise bad_request("the request body is empty: send the object as JSON or YAML")
    return await off_loop(len(body), decode_object, body, content_type(request))


async def off_loop(size: int, work: Any, *args: Any) -> Any:
    """``work(*args)``, in a worker thread when the body (``size`` bytes) is large: decoding
    3 MiB of YAML takes seconds of CPU, which must not stop the leases and watches meanwhile."""
    if size <= OFF_LOOP:
        return work(*args)
    return await asyncio.to_thread(work, *args)


async def read_options(request: web.Request) -> dict[str, Any]:
    """Read an optional options body (DeleteOptions): {} when absent."""
    body = await read_bytes(request)
    if not body.strip():
        return {}
    return decode_object(body, content_type(request))
