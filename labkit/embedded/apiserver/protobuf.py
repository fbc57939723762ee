"""Decode Kubernetes protobuf request bodies into the JSON dicts the API speaks.

kubectl >= 1.32 sends typed-client creates (``kubectl create deployment``,
``create namespace``, ``create configmap`` ...) as
``application/vnd.kubernetes.protobuf`` and has no JSON fallback. Such a body is
the magic ``k8s\\x00`` followed by a ``runtime.Unknown`` envelope::

    Unknown { 1 typeMeta { 1 apiVersion, 2 kind }, 2 raw, 3 contentEncoding, 4 contentType }

where ``raw`` is the kind's proto2 message from k8s.io/api ``*/generated.proto``.

The decoder is driven by :data:`SCHEMA`, a plain-text table of the messages
reachable from the kinds the embedded cluster serves. Each line is
``NUMBER JSON_NAME [TYPE]``:

- ``TYPE`` defaults to ``string``; ``[]T`` is a repeated field and ``map[T]`` a
  ``map<string, T>`` (sent as repeated ``{1 key, 2 value}`` entries).
- ``*T`` marks a field that stays in the JSON even when it is zero: a Go pointer
  (``replicas: 0`` is meaningful) or a field without ``omitempty``. Every other
  scalar is dropped when zero, because the Go marshaller writes non-pointer
  fields to the wire even when they are empty and JSON would have omitted them.
- ``-`` as the name inlines the sub-message's keys into the parent, like Go's
  embedded structs (``Volume.volumeSource``, ``Probe.handler``).

Special types: ``Time`` and ``MicroTime`` become RFC 3339 strings (a zero time
is omitted), ``IntOrString`` an int or a str, ``Quantity`` its string,
``FieldsV1`` the JSON object it carries, and ``bytes`` a base64 string.
Fields missing from the schema (for example ones added to Kubernetes later) are
skipped and reported by :func:`decode_detailed`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from labkit.embedded.apiserver.protobuf_schema import KINDS, SCHEMA_TEXT

PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
"""The Content-Type kubectl sends protobuf bodies with."""
MAGIC = b"k8s\x00"
"""The four bytes every Kubernetes protobuf body starts with."""


class ProtobufError(ValueError):
    """A request body that is not a protobuf object this server can decode."""


_SCALARS = {"string", "bytes", "bool", "int32", "int64"}
_SPECIAL = {"Time", "MicroTime", "IntOrString", "Quantity", "FieldsV1"}
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_WIRE_NAMES = {_VARINT: "varint", _FIXED64: "fixed64", _BYTES: "length-delimited", _FIXED32: "fixed32"}


@dataclass(frozen=True)
class Field:
    """One field of a message: its JSON name (``""`` when inlined) and type."""

    name: str
    type: str
    repeated: bool = False
    is_map: bool = False
    keep_zero: bool = False

    @property
    def is_message(self) -> bool:
        """Whether the field's value is a sub-message (special types included)."""
        return self.type not in _SCALARS


def _parse_field(line: str) -> tuple[int, Field]:
    number, name, *rest = line.split()
    spec = rest[0] if rest else "string"
    keep_zero = spec.startswith("*")
    spec = spec.lstrip("*")
    if spec.startswith("[]"):
        return int(number), Field(name, spec[2:], repeated=True)
    if spec.startswith("map["):
        return int(number), Field(name, spec[4:-1], is_map=True)
    return int(number), Field("" if name == "-" else name, spec, keep_zero=keep_zero)


def _parse_schema(text: str) -> dict[str, dict[int, Field]]:
    schema: dict[str, dict[int, Field]] = {}
    current: dict[int, Field] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            current = schema.setdefault(line.strip(), {})
            continue
        number, fld = _parse_field(line)
        current[number] = fld
    return schema


SCHEMA: dict[str, dict[int, Field]] = _parse_schema(SCHEMA_TEXT)
"""Message name → {field number: :class:`Field`}, parsed from the table above."""


@dataclass
class Decoded:
    """A decoded body plus the fields that were skipped because the schema lacks them."""

    object: dict[str, Any]
    unknown_fields: list[str] = field(default_factory=list)
    """JSON path and number of each skipped field, e.g. ``spec.template.spec#41``
    (``#41`` alone for a top-level field)."""


def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    """Read a base-128 varint at ``pos``; return (value, next position)."""
    value = shift = 0
    while pos < len(buf):
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError(f"{where}: varint longer than 10 bytes at byte {pos}")
    raise ProtobufError(f"{where}: truncated varint at byte {pos} (the body ends inside it)")


def _wire_fields(buf: bytes, where: str) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of one message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, where)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"{where}: invalid field number 0 at byte {pos}")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, where)
            yield number, wire, value
            continue
        if wire == _BYTES:
            size, pos = _varint(buf, pos, where)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
        else:
            raise ProtobufError(f"{where}: field {number} has unsupported wire type {wire}")
        if pos + size > len(buf):
            raise ProtobufError(
                f"{where}: field {number} claims {size} bytes but only {len(buf) - pos} remain"
            )
        yield number, wire, buf[pos : pos + size]
        pos += size


def _signed(value: int) -> int:
    """Two's-complement reading of a 64-bit varint (proto int32/int64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: int | bytes, where: str) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError(f"{where}: expected a length-delimited string, got a number")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtobufError(f"{where}: string is not valid UTF-8") from e


def _scalar(fld: Field, wire: int, value: int | bytes, where: str) -> Any:
    if fld.type in ("string", "bytes"):
        if not isinstance(value, bytes):
            raise ProtobufError(f"{where}: expected length-delimited {fld.type}, got {_WIRE_NAMES[wire]}")
        if fld.type == "bytes":
            return base64.b64encode(value).decode("ascii")
        return _text(value, where)
    if not isinstance(value, int):
        raise ProtobufError(f"{where}: expected varint {fld.type}, got {_WIRE_NAMES[wire]}")
    return bool(value) if fld.type == "bool" else _signed(value)


def _time(buf: bytes, where: str, micro: bool) -> str | None:
    parts = {n: _signed(v) for n, _, v in _wire_fields(buf, where) if isinstance(v, int)}
    seconds, nanos = parts.get(1, 0), parts.get(2, 0)
    if seconds == 0 and nanos == 0:
        return None
    try:
        stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError) as e:
        raise ProtobufError(f"{where}: time {seconds}s since 1970 is out of range") from e
    return f"{stamp}.{nanos // 1000:06d}Z" if micro else f"{stamp}Z"


def _int_or_string(buf: bytes, where: str) -> int | str:
    parts = {n: v for n, _, v in _wire_fields(buf, where)}
    if parts.get(1) == 1:
        return _text(parts.get(3, b""), where)
    int_val = parts.get(2, 0)
    return _signed(int_val) if isinstance(int_val, int) else 0


def _first_bytes(buf: bytes, where: str) -> bytes:
    """Field 1 of a one-field wrapper message (Quantity, FieldsV1)."""
    for number, _, value in _wire_fields(buf, where):
        if number == 1 and isinstance(value, bytes):
            return value
    return b""


def _special(type_name: str, buf: bytes, where: str) -> Any:
    if type_name in ("Time", "MicroTime"):
        return _time(buf, where, micro=type_name == "MicroTime")
    if type_name == "IntOrString":
        return _int_or_string(buf, where)
    if type_name == "Quantity":
        return _text(_first_bytes(buf, where), where)
    raw = _first_bytes(buf, where)
    try:
        return json.loads(raw) if raw else {}
    except ValueError as e:
        raise ProtobufError(f"{where}: fieldsV1 is not JSON") from e


class _Decoder:
    """Walks one object, collecting the paths of fields the schema does not know."""

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def message(self, type_name: str, buf: bytes, path: str) -> dict[str, Any]:
        schema = SCHEMA[type_name]
        out: dict[str, Any] = {}
        for number, wire, value in _wire_fields(buf, path or "object"):
            fld = schema.get(number)
            if fld is None:
                self.unknown.append(f"{path}#{number}")
            elif fld.is_map:
                key, item = self.map_entry(fld, value, _join(path, fld.name))
                out.setdefault(fld.name, {})[key] = item
            elif fld.repeated:
                out.setdefault(fld.name, []).extend(self.repeated(fld, wire, value, path, out))
            else:
                self.single(fld, wire, value, path, out)
        return out

    def single(self, fld: Field, wire: int, value: int | bytes, path: str, out: dict[str, Any]) -> None:
        where = _join(path, fld.name)
        decoded = self.value(fld, wire, value, where)
        if not fld.name:
            out.update(decoded)
        elif decoded is None or (not fld.is_message and not fld.keep_zero and not decoded):
            out.pop(fld.name, None)
        else:
            out[fld.name] = decoded

    def repeated(
        self, fld: Field, wire: int, value: int | bytes, path: str, out: dict[str, Any]
    ) -> list[Any]:
        where = f"{_join(path, fld.name)}[{len(out.get(fld.name, []))}]"
        if fld.type in ("int32", "int64", "bool") and isinstance(value, bytes):
            return [self.value(fld, _VARINT, v, where) for v in _packed(value, where)]
        return [self.value(fld, wire, value, where)]

    def map_entry(self, fld: Field, value: int | bytes, where: str) -> tuple[str, Any]:
        if not isinstance(value, bytes):
            raise ProtobufError(f"{where}: map entry must be length-delimited")
        key, item = "", None
        for number, wire, part in _wire_fields(value, where):
            if number == 1:
                key = _text(part, where)
            elif number == 2:
                item = self.value(fld, wire, part, f"{where}[{key}]")
        return key, "" if item is None else item

    def value(self, fld: Field, wire: int, value: int | bytes, where: str) -> Any:
        if not fld.is_message:
            return _scalar(fld, wire, value, where)
        if not isinstance(value, bytes):
            raise ProtobufError(f"{where}: expected a length-delimited message, got {_WIRE_NAMES[wire]}")
        if fld.type in _SPECIAL:
            return _special(fld.type, value, where)
        return self.message(fld.type, value, where)


def _packed(buf: bytes, where: str) -> Iterator[int]:
    pos = 0
    while pos < len(buf):
        item, pos = _varint(buf, pos, where)
        yield item


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path and name else path or name


def _envelope(body: bytes) -> tuple[str, str, bytes]:
    """Check the magic and unwrap ``runtime.Unknown`` into (apiVersion, kind, raw)."""
    if not body.startswith(MAGIC):
        raise ProtobufError(f"protobuf body must start with the magic bytes {MAGIC!r}, got {body[:4]!r}")
    api_version = kind = encoding = ""
    raw = b""
    for number, _, value in _wire_fields(body[len(MAGIC) :], "envelope"):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            meta = {n: v for n, _, v in _wire_fields(value, "envelope.typeMeta")}
            api_version = _text(meta.get(1, b""), "envelope.typeMeta.apiVersion")
            kind = _text(meta.get(2, b""), "envelope.typeMeta.kind")
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _text(value, "envelope.contentEncoding")
    if encoding:
        raise ProtobufError(f"envelope: unsupported contentEncoding {encoding!r}")
    if not kind or not api_version:
        raise ProtobufError("envelope: typeMeta has no apiVersion or kind")
    return api_version, kind, raw


def decode_detailed(body: bytes) -> Decoded:
    """Decode a protobuf request body, also reporting fields the schema skipped."""
    api_version, kind, raw = _envelope(body)
    root = KINDS.get((api_version, kind))
    if root is None:
        raise ProtobufError(
            f"cannot decode a protobuf {kind} ({api_version}): this server reads protobuf only for "
            + ", ".join(sorted(k for _, k in KINDS))
            + "; send it as JSON (for example with -f and a manifest)"
        )
    decoder = _Decoder()
    obj = {"kind": kind, "apiVersion": api_version, **decoder.message(root, raw, "")}
    return Decoded(obj, decoder.unknown)


def decode(body: bytes) -> dict[str, Any]:
    """Decode a ``k8s\\x00`` protobuf body into the JSON object dict it stands for.

    Raises :class:`ProtobufError` on a malformed envelope or message, or a kind
    this server does not read as protobuf.
    """
    return decode_detailed(body).object
