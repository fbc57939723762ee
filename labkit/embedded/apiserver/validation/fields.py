"""Decode-time checks: unknown fields and values the typed decoder cannot read.

Known fields come from the official ``kubernetes`` client's models, imported on first use
because the import costs about a quarter of a second.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from labkit.embedded.apiserver.status import bad_request
from labkit.embedded.apiserver.validation.base64_errors import base64_error
from labkit.embedded.apiserver.validation.coerce import Obj
from labkit.embedded.apiserver.validation.quantity import parse_quantity
from labkit.embedded.resources import RESOURCES, ResourceType, by_kind

MAX_STRICT_ERRORS = 100
_QUANTITY_FIELDS = {
    ("V1ResourceRequirements", "limits"),
    ("V1ResourceRequirements", "requests"),
    ("V1PodSpec", "overhead"),
    ("V1NodeStatus", "capacity"),
    ("V1NodeStatus", "allocatable"),
    ("V1EmptyDirVolumeSource", "sizeLimit"),
    ("V1ResourceFieldSelector", "divisor"),
}
_BYTES_FIELDS = {("V1Secret", "data"), ("V1ConfigMap", "binaryData")}
_SCALARS = {"str", "int", "float", "bool", "datetime", "date", "object", "bytearray", "bytes"}
_LIST = re.compile(r"^(?:List\[|list\[)(.*)\]$")
_DICT = re.compile(r"^(?:Dict\[str, *|dict\(str, *)(.*)[\])]$")
_MODEL_NAMES = {"Event": "CoreV1Event"}
# The integer fields that are int64 upstream (by JSON name); every other integer field is int32.
INT64_FIELDS = frozenset(
    {
        "activeDeadlineSeconds",
        "deletionGracePeriodSeconds",
        "expirationSeconds",
        "fsGroup",
        "generation",
        "gid",
        "gracePeriodSeconds",
        "observedGeneration",
        "runAsGroup",
        "runAsUser",
        "sizeBytes",
        "startingDeadlineSeconds",
        "supplementalGroups",
        "terminationGracePeriodSeconds",
        "tolerationSeconds",
        "uid",
    }
)
_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def int_type(path: str) -> str:
    """``int32`` or ``int64``: the Go type of the integer field at a dotted path."""
    last = re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1]
    return "int64" if last in INT64_FIELDS else "int32"


@functools.cache
def _client() -> Any:
    import kubernetes.client  # deferred: about 0.25 s, only needed on the first write

    return kubernetes.client


@functools.cache
def _model_fields(model: str) -> dict[str, str] | None:
    """JSON field name -> type string for one client model, or None for an unknown model."""
    cls = getattr(_client(), model, None)
    types = getattr(cls, "openapi_types", None)
    if not isinstance(types, dict):
        return None
    return {cls.attribute_map[attr]: kind for attr, kind in types.items()}


def warm_up() -> None:
    """Load the client models of every served kind now (the daemon calls this in a thread after
    it is ready), so that a learner's first ``kubectl apply`` does not pay for it."""
    stack = [_MODEL_NAMES.get(rt.kind, f"{rt.version.capitalize()}{rt.kind}") for rt in RESOURCES]
    seen: set[str] = set()
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for kind in (_model_fields(model) or {}).values():
            while (inner := _LIST.match(kind) or _DICT.match(kind)) is not None:
                kind = inner.group(1)
            if kind not in _SCALARS:
                stack.append(kind)


def _model_for(api_version: str, kind: str) -> str | None:
    rt = by_kind(api_version, kind)
    if rt is None:
        return None
    return _MODEL_NAMES.get(rt.kind, f"{rt.version.capitalize()}{rt.kind}")


@dataclass
class _Scan:
    """What one walk of an object against its schema found."""

    unknown: list[str] = field(default_factory=list)
    decode_error: str | None = None
    decode_field: str = ""
    prune: bool = False  # remove unknown fields, as decoding into typed structs does

    def walk(self, value: Any, kind: str, path: str, owner: str = "") -> None:
        list_of, dict_of = _LIST.match(kind), _DICT.match(kind)
        if not self.decode_error and not _fits(value, kind, bool(list_of), bool(dict_of), path):
            where = (
                f"Go struct field {_go_name(owner)}.{path} of type {_go_type(kind, path)}"
                if owner
                else _go_type(kind)
            )
            self.decode_error = f"json: cannot unmarshal {_json_type(value)} into {where}"
            self.decode_field = path
            return
        if list_of:
            for i, item in enumerate(value if isinstance(value, list) else []):
                self.walk(item, list_of.group(1), f"{path}[{i}]", owner)
        elif dict_of:
            for key, item in (value if isinstance(value, dict) else {}).items():
                self.walk(item, dict_of.group(1), f"{path}.{key}", owner)
        elif kind not in _SCALARS and isinstance(value, dict):
            self._object(value, kind, path)

    def _object(self, value: Obj, model: str, path: str) -> None:
        fields = _model_fields(model)
        if fields is None:
            return
        for key, item in list(value.items()):
            child = f"{path}.{key}" if path else key
            if key not in fields:
                if len(self.unknown) < MAX_STRICT_ERRORS and child not in self.unknown:
                    self.unknown.append(child)
                if self.prune:
                    del value[key]
                continue
            if (model, key) in _QUANTITY_FIELDS:
                self._quantities(item)
            elif (model, key) in _BYTES_FIELDS:
                self._bytes(item)
            self.walk(item, fields[key], child, model)

    def _quantities(self, value: Any) -> None:
        for item in value.values() if isinstance(value, dict) else [value]:
            if item is None or self.decode_error:
                continue
            try:
                parse_quantity(item)
            except ValueError as e:
                self.decode_error = str(e)

    def _bytes(self, value: Any) -> None:
        for item in value.values() if isinstance(value, dict) else []:
            if isinstance(item, str) and not self.decode_error:
                self.decode_error = base64_error(item)


def _fits(value: Any, kind: str, is_list: bool, is_dict: bool, path: str = "") -> bool:
    """Whether a JSON value can be decoded into a field of this client type (null always can)."""
    if value is None or kind == "object":
        return True
    if is_list:
        return isinstance(value, list)
    if is_dict:
        return isinstance(value, dict)
    if kind in ("str", "datetime", "date", "bytearray", "bytes"):
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        low, high = _RANGES[int_type(path)]
        return low <= value <= high
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, dict)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _go_name(model: str) -> str:
    """``V1DeploymentSpec`` -> ``DeploymentSpec``."""
    return re.sub(r"^(?:CoreV1|V\d+(?:beta\d+|alpha\d+)?)", "", model)


def _go_type(kind: str, path: str = "") -> str:
    list_of, dict_of = _LIST.match(kind), _DICT.match(kind)
    if list_of:
        return "[]" + _go_type(list_of.group(1), path)
    if dict_of:
        return "map[string]" + _go_type(dict_of.group(1), path)
    if kind == "int":
        return int_type(path)
    scalar = {
        "str": "string",
        "int": "int32",
        "float": "float64",
        "bool": "bool",
        "datetime": "v1.Time",
        "bytearray": "[]uint8",
        "date": "string",
    }
    return scalar.get(kind, _go_name(kind))


def _scan(model: str | None, obj: Obj, prune: bool = False) -> _Scan:
    scan = _Scan(prune=prune)
    if model is not None:
        scan.walk(obj, model, "")
    return scan


def unknown_fields(obj: Obj) -> list[str]:
    """Dotted paths of fields the object's kind lacks (``spec.template.spec.containers[0].imagePolicy``)."""
    return _scan(_model_for(str(obj.get("apiVersion", "")), str(obj.get("kind", ""))), obj).unknown


def check_fields(rt: ResourceType, obj: Obj, field_validation: str) -> list[str]:
    """Decode-time checks: raise 400 for undecodable values and (``Strict``) unknown fields;
    return ``Warning`` texts for unknown fields with ``Warn``; nothing with ``Ignore`` or ``""``.
    Unknown fields are removed from ``obj`` (when not refused), as kube-apiserver drops them."""
    mode = field_validation.lower()
    if mode not in ("strict", "warn", "ignore", ""):
        raise bad_request(
            f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{field_validation}"'
        )
    scan = _scan(_MODEL_NAMES.get(rt.kind, f"{rt.version.capitalize()}{rt.kind}"), obj, prune=True)
    prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
    if scan.decode_error:
        raise bad_request(prefix + scan.decode_error)
    texts = [f'unknown field "{path}"' for path in scan.unknown]
    if mode == "strict" and texts:
        raise bad_request(prefix + "strict decoding error: " + ", ".join(texts))
    return texts if mode == "warn" else []
