"""Validation of objects on create, update and patch, with kube-apiserver's messages.

Three steps, in the order the API server runs them:

* :func:`check_fields` is decoding: unknown fields (the ``fieldValidation`` query
  parameter decides between a 400, ``Warning`` headers or nothing) and values the
  typed decoder cannot read (bad quantities, bad base64 in a Secret), always a 400.
  Known fields come from the official ``kubernetes`` client's models, imported on
  first use because the import costs about a quarter of a second.
* :func:`validate` is ``pkg/apis/*/validation``: it collects every problem and raises
  one 422 Invalid whose causes carry upstream's field paths, reasons and messages.

Messages follow k8s.io/apimachinery ``util/validation`` and ``util/validation/field``
(v1.32): ``Required value``, ``Invalid value: "x": <why>``, ``Unsupported value: "x":
supported values: "A", "B"`` and so on.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from labkit.embedded.apiserver.status import Cause, bad_request, invalid
from labkit.embedded.resources import ResourceType, by_kind

Obj = dict[str, Any]

MAX_SECRET_SIZE = 1024 * 1024
TOTAL_ANNOTATION_SIZE = 256 * 1024
MAX_CLIENT_IP_TIMEOUT = 86400
MAX_STRICT_ERRORS = 100

# -- name and value rules (k8s.io/apimachinery/pkg/util/validation) ----------------------

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED + ")?"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"
_PERCENT = "[0-9]+%"


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + pattern + "$")


_RE = {
    name: _full(p)
    for name, p in {
        "label": _DNS1123_LABEL,
        "subdomain": _DNS1123_SUBDOMAIN,
        "dns1035": _DNS1035_LABEL,
        "qualified": _QUALIFIED,
        "value": _LABEL_VALUE,
        "key": _CONFIG_KEY,
        "percent": _PERCENT,
    }.items()
}


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, double spaces included."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_label(value: str) -> list[str]:
    """IsDNS1123Label: problems with ``value`` as an RFC 1123 label (empty list when valid)."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _RE["label"].match(value):
        if _RE["subdomain"].match(value):
            errs.append("must not contain dots")
        else:
            errs.append(
                _regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character",
                    _DNS1123_LABEL,
                    "my-name",
                    "123-abc",
                )
            )
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    """IsDNS1123Subdomain: problems with ``value`` as an RFC 1123 subdomain."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _RE["subdomain"].match(value):
        errs.append(
            _regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN,
                "example.com",
            )
        )
    return errs


def dns1035_label(value: str) -> list[str]:
    """IsDNS1035Label: problems with ``value`` as a DNS-1035 label (Service names)."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _RE["dns1035"].match(value):
        errs.append(
            _regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character",
                _DNS1035_LABEL,
                "my-name",
                "abc-123",
            )
        )
    return errs


_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)


def qualified_name(value: str) -> list[str]:
    """IsQualifiedName: a label or annotation key, ``[prefix/]name``."""
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_MSG, _QUALIFIED, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in dns1123_subdomain(prefix)]
    name = parts[-1]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _RE["qualified"].match(name):
        errs.append("name part " + _regex_error(_QUALIFIED_MSG, _QUALIFIED, "MyName", "my.name", "123-abc"))
    return errs


def label_value(value: str) -> list[str]:
    """IsValidLabelValue: at most 63 characters of the qualified-name alphabet, or empty."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _RE["value"].match(value):
        errs.append(
            _regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def config_key(value: str) -> list[str]:
    """IsConfigMapKey: a ConfigMap or Secret data key."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _RE["key"].match(value):
        errs.append(
            _regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def port_name(value: str) -> list[str]:
    """IsValidPortName: an IANA service name, at most 15 characters, with a letter."""
    errs = [_max_len(15)] if len(value) > 15 else []
    if not re.match(r"^[-a-z0-9]+$", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_number(value: int) -> list[str]:
    """IsValidPortNum: 1..65535."""
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


def env_var_name(value: str) -> list[str]:
    """IsRelaxedEnvVarName (on by default since v1.32): printable ASCII except '='."""
    errs = ["environment variable name must be non-empty"] if not value else []
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in value):
        errs.append(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
        )
    return errs


def _mask_trailing_dash(name: str) -> str:
    """What upstream validates for a generateName prefix ending in '-'."""
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


# -- quantities ------------------------------------------------------------------------------

QUANTITY_FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {e: s for s, e in _DECIMAL.items()}


@dataclass(frozen=True)
class Quantity:
    """A resource quantity (``100m``, ``1Gi``, ``0.5``, ``1e3``): exact value plus its format."""

    value: Fraction
    format: str  # "DecimalSI", "BinarySI" or "DecimalExponent"

    def __str__(self) -> str:
        """The canonical form upstream prints (``1536Mi`` for ``1.5Gi``, ``500m`` for ``0.5``)."""
        if self.value == 0:
            return "0"
        if self.format == "BinarySI" and abs(self.value) >= 1024 and self.value.denominator == 1:
            number, power = int(self.value), 0
            while power < 6 and number % 1024 == 0:
                number //= 1024
                power += 1
            return f"{number}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][power]}"
        nanos = -((-abs(self.value) * 10**9) // 1)  # upstream rounds up to nano units
        exponent = -9
        while nanos % 1000 == 0 and exponent < 18:
            nanos //= 1000
            exponent += 3
        sign = "-" if self.value < 0 else ""
        if self.format == "DecimalExponent":
            return f"{sign}{nanos}" + (f"e{exponent}" if exponent else "")
        return f"{sign}{nanos}{_DECIMAL_SUFFIX[exponent]}"


def parse_quantity(text: str | float) -> Quantity:
    """Parse a quantity as the API server's decoder does; ValueError carries upstream's message."""
    raw = str(text).strip() if isinstance(text, str) else json.dumps(text)
    match = _QUANTITY.match(raw)
    if not match or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", match.group(1)):
        raise ValueError(QUANTITY_FORMAT_ERROR)
    number, suffix = Fraction(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return Quantity(number * 2 ** _BINARY[suffix], "BinarySI")
    if suffix in _DECIMAL:
        return Quantity(number * Fraction(10) ** _DECIMAL[suffix], "DecimalSI")
    exp = re.fullmatch(r"[eE]([-+]?\d+)", suffix)
    if exp:
        return Quantity(number * Fraction(10) ** int(exp.group(1)), "DecimalExponent")
    raise ValueError("unable to parse quantity's suffix")


# -- base64 (Go's encoding/base64 StdEncoding, for its error offsets) ----------------------

_B64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error(text: str) -> str | None:
    """Go's error for ``text`` as padded base64 (``illegal base64 data at input byte N``), or None."""
    src, si = text.encode(), 0
    while si < len(src):
        si, bad = _base64_quantum(src, si)
        if bad is not None:
            return f"illegal base64 data at input byte {bad}"
    return None


def _base64_quantum(src: bytes, si: int) -> tuple[int, int | None]:
    """One 4-character group of Go's decodeQuantum: the next offset and a bad offset, if any."""
    j = 0
    while j < 4:
        if si == len(src):
            return si, None if j == 0 else si - j
        char = chr(src[si])
        si += 1
        if char in _B64:
            j += 1
            continue
        if char in "\r\n":
            continue
        if char != "=" or j < 2:
            return si, si - 1
        if j == 2:  # "==" expected
            while si < len(src) and chr(src[si]) in "\r\n":
                si += 1
            if si == len(src):
                return si, len(src)
            if chr(src[si]) != "=":
                return si, si - 1
            si += 1
        while si < len(src) and chr(src[si]) in "\r\n":
            si += 1
        return si, si if si < len(src) else None
    return si, None


# -- decoding: unknown fields and undecodable values ------------------------------------------

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
_SCALARS = {"str", "int", "float", "bool", "datetime", "date", "object", "bytearray"}
_LIST = re.compile(r"^(?:List\[|list\[)(.*)\]$")
_DICT = re.compile(r"^(?:Dict\[str, *|dict\(str, *)(.*)[\])]$")
_MODEL_NAMES = {"Event": "CoreV1Event"}


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

    def walk(self, value: Any, kind: str, path: str) -> None:
        list_of, dict_of = _LIST.match(kind), _DICT.match(kind)
        if list_of:
            for i, item in enumerate(value if isinstance(value, list) else []):
                self.walk(item, list_of.group(1), f"{path}[{i}]")
        elif dict_of:
            for key, item in (value if isinstance(value, dict) else {}).items():
                self.walk(item, dict_of.group(1), f"{path}.{key}")
        elif kind not in _SCALARS and isinstance(value, dict):
            self._object(value, kind, path)

    def _object(self, value: Obj, model: str, path: str) -> None:
        fields = _model_fields(model)
        if fields is None:
            return
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if key not in fields:
                if len(self.unknown) < MAX_STRICT_ERRORS and child not in self.unknown:
                    self.unknown.append(child)
                continue
            if (model, key) in _QUANTITY_FIELDS:
                self._quantities(item)
            elif (model, key) in _BYTES_FIELDS:
                self._bytes(item)
            self.walk(item, fields[key], child)

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


def _scan(model: str | None, obj: Obj) -> _Scan:
    scan = _Scan()
    if model is not None:
        scan.walk(obj, model, "")
    return scan


def unknown_fields(obj: Obj) -> list[str]:
    """Dotted paths of fields the object's kind lacks (``spec.template.spec.containers[0].imagePolicy``)."""
    return _scan(_model_for(str(obj.get("apiVersion", "")), str(obj.get("kind", ""))), obj).unknown


def check_fields(rt: ResourceType, obj: Obj, field_validation: str) -> list[str]:
    """Decode-time checks: raise 400 for undecodable values and (``Strict``) unknown fields;
    return ``Warning`` texts for unknown fields with ``Warn``; nothing with ``Ignore`` or ``""``."""
    mode = field_validation.lower()
    if mode not in ("strict", "warn", "ignore", ""):
        raise bad_request(
            f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not "{field_validation}"'
        )
    scan = _scan(_MODEL_NAMES.get(rt.kind, f"{rt.version.capitalize()}{rt.kind}"), obj)
    prefix = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
    if scan.decode_error:
        raise bad_request(prefix + scan.decode_error)
    texts = [f'unknown field "{path}"' for path in scan.unknown]
    if mode == "strict" and texts:
        raise bad_request(prefix + "strict decoding error: " + ", ".join(texts))
    return texts if mode == "warn" else []


# -- field errors ----------------------------------------------------------------------------


class _Raw(str):
    """A value already rendered the way Go prints it (``%#v`` of a struct, a map)."""


def _go(value: Any) -> str:
    """A bad value as ``field.Error`` prints it: strings quoted, numbers and booleans bare."""
    if isinstance(value, _Raw):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _go_map(labels: Any) -> _Raw:
    """``%#v`` of a map[string]string: keys sorted, ``(nil)`` when absent."""
    if not isinstance(labels, dict):
        return _Raw("map[string]string(nil)")
    inner = ", ".join(f"{json.dumps(k)}:{json.dumps(str(v))}" for k, v in sorted(labels.items()))
    return _Raw(f"map[string]string{{{inner}}}")


def _go_selector(selector: Any) -> _Raw:
    """The generated ``String()`` of a metav1.LabelSelector."""
    selector = selector if isinstance(selector, dict) else {}
    labels = selector.get("matchLabels") or {}
    shown = "".join(f"{k}: {v}," for k, v in sorted(labels.items()))
    exprs = "".join(
        f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
        f"Values:[{' '.join(map(str, e.get('values') or []))}],}},"
        for e in selector.get("matchExpressions") or []
        if isinstance(e, dict)
    )
    return _Raw(
        f"&LabelSelector{{MatchLabels:map[string]string{{{shown}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )


def _go_int_or_string(value: Any) -> _Raw:
    """IntOrString through its ``String()``: the number or the text, unquoted."""
    return _Raw(str(value))


class _Errors:
    """An ErrorList: causes in the order found, duplicates dropped as upstream's aggregate does."""

    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def _add(self, path: str, message: str, reason: str) -> None:
        cause = Cause(path, message, reason)
        if cause not in self.causes:
            self.causes.append(cause)

    def required(self, path: str, detail: str = "") -> None:
        self._add(path, "Required value" + (f": {detail}" if detail else ""), "FieldValueRequired")

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self._add(path, f"Invalid value: {_go(value)}: {detail}", "FieldValueInvalid")

    def invalid_each(self, path: str, value: Any, messages: Iterable[str]) -> None:
        for msg in messages:
            self.invalid(path, value, msg)

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        choices = ", ".join(json.dumps(s) for s in supported)
        self._add(
            path, f"Unsupported value: {_go(value)}: supported values: {choices}", "FieldValueNotSupported"
        )

    def duplicate(self, path: str, value: Any) -> None:
        self._add(path, f"Duplicate value: {_go(value)}", "FieldValueDuplicate")

    def forbidden(self, path: str, detail: str) -> None:
        self._add(path, f"Forbidden: {detail}", "FieldValueForbidden")

    def not_found(self, path: str, value: Any) -> None:
        self._add(path, f"Not found: {_go(value)}", "FieldValueNotFound")

    def too_long(self, path: str, limit: int) -> None:
        self._add(path, f"Too long: must have at most {limit} bytes", "FieldValueTooLong")

    def nonnegative(self, path: str, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[Obj]:
    return [_dict(v) for v in _list(value)]


def _int(value: Any) -> int:
    """An integer field's value; 0 for what the typed decoder would not have produced."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- object metadata -------------------------------------------------------------------------


def _object_meta(errs: _Errors, meta: Obj, name_rule: Callable[[str], list[str]], namespaced: bool) -> None:
    generate = meta.get("generateName")
    if generate:
        errs.invalid_each("metadata.generateName", generate, name_rule(_mask_trailing_dash(str(generate))))
    name = meta.get("name")
    if not name:
        errs.required("metadata.name", "name or generateName is required")
    else:
        errs.invalid_each("metadata.name", name, name_rule(str(name)))
    if namespaced and meta.get("namespace"):
        errs.invalid_each("metadata.namespace", meta["namespace"], dns1123_label(str(meta["namespace"])))
    errs.nonnegative("metadata.generation", meta.get("generation"))
    _labels(errs, meta.get("labels"), "metadata.labels")
    _annotations(errs, meta.get("annotations"), "metadata.annotations")


def _labels(errs: _Errors, labels: Any, path: str) -> None:
    for key, value in _dict(labels).items():
        errs.invalid_each(path, key, qualified_name(key))
        errs.invalid_each(path, value, label_value(str(value)))


def _annotations(errs: _Errors, annotations: Any, path: str) -> None:
    annotations = _dict(annotations)
    for key in annotations:
        errs.invalid_each(path, key, qualified_name(key.lower()))
    if sum(len(k) + len(str(v)) for k, v in annotations.items()) > TOTAL_ANNOTATION_SIZE:
        errs.too_long(path, TOTAL_ANNOTATION_SIZE)


# -- pods --------------------------------------------------------------------------------------

_PROTOCOLS = ("SCTP", "TCP", "UDP")


def _pod_template(errs: _Errors, template: Obj, path: str) -> None:
    """ValidatePodTemplateSpec (labels and annotations sit at ``<path>.labels`` upstream)."""
    meta = _dict(template.get("metadata"))
    _labels(errs, meta.get("labels"), f"{path}.labels")
    _annotations(errs, meta.get("annotations"), f"{path}.annotations")
    _pod_spec(errs, _dict(template.get("spec")), f"{path}.spec")


def _pod_spec(errs: _Errors, spec: Obj, path: str) -> None:
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.required(f"{path}.terminationGracePeriodSeconds")
    volumes = _volumes(errs, spec.get("volumes"), f"{path}.volumes")
    containers = _dicts(spec.get("containers"))
    if not containers:
        errs.required(f"{path}.containers")
    names: set[str] = set()
    for key in ("containers", "initContainers"):
        for i, ctr in enumerate(_dicts(spec.get(key))):
            _container(errs, ctr, volumes, names, f"{path}.{key}[{i}]")
    _enum(errs, spec.get("restartPolicy"), ("Always", "OnFailure", "Never"), f"{path}.restartPolicy")
    _enum(
        errs,
        spec.get("dnsPolicy"),
        ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
        f"{path}.dnsPolicy",
    )
    _labels(errs, spec.get("nodeSelector"), f"{path}.nodeSelector")
    for key, rule in (
        ("serviceAccountName", dns1123_subdomain),
        ("nodeName", dns1123_subdomain),
        ("hostname", dns1123_label),
        ("subdomain", dns1123_label),
    ):
        if spec.get(key):
            errs.invalid_each(f"{path}.{key}", spec[key], rule(str(spec[key])))
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= 2**31 - 1:
        errs.invalid(f"{path}.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive")
    for i, toleration in enumerate(_dicts(spec.get("tolerations"))):
        _toleration(errs, toleration, f"{path}.tolerations[{i}]")


def _enum(errs: _Errors, value: Any, allowed: tuple[str, ...], path: str) -> None:
    if not value:
        errs.required(path)
    elif value not in allowed:
        errs.not_supported(path, value, allowed)


def _volumes(errs: _Errors, volumes: Any, path: str) -> set[str]:
    names: set[str] = set()
    for i, volume in enumerate(_dicts(volumes)):
        name = volume.get("name")
        if not name:
            errs.required(f"{path}[{i}].name")
        elif name in names:
            errs.duplicate(f"{path}[{i}].name", name)
        else:
            errs.invalid_each(f"{path}[{i}].name", name, dns1123_label(str(name)))
            names.add(str(name))
        if len([k for k in volume if k != "name"]) > 1:
            errs.forbidden(f"{path}[{i}]", "may not specify more than 1 volume type")
    return names


def _container(errs: _Errors, ctr: Obj, volumes: set[str], names: set[str], path: str) -> None:
    name = ctr.get("name")
    if not name:
        errs.required(f"{path}.name")
    else:
        errs.invalid_each(f"{path}.name", name, dns1123_label(str(name)))
    if not ctr.get("image"):
        errs.required(f"{path}.image")
    _enum(
        errs,
        ctr.get("terminationMessagePolicy"),
        ("File", "FallbackToLogsOnError"),
        f"{path}.terminationMessagePolicy",
    )
    _container_ports(errs, ctr.get("ports"), f"{path}.ports")
    for i, env in enumerate(_dicts(ctr.get("env"))):
        if not env.get("name"):
            errs.required(f"{path}.env[{i}].name")
        errs.invalid_each(
            f"{path}.env[{i}].name", env.get("name", ""), env_var_name(str(env.get("name", "")))
        )
    _volume_mounts(errs, ctr.get("volumeMounts"), volumes, f"{path}.volumeMounts")
    _enum(errs, ctr.get("imagePullPolicy"), ("Always", "IfNotPresent", "Never"), f"{path}.imagePullPolicy")
    _resources(errs, _dict(ctr.get("resources")), f"{path}.resources")
    if name in names:
        errs.duplicate(f"{path}.name", name)
    elif name:
        names.add(str(name))
    for hook in ("postStart", "preStop"):
        handler = _dict(ctr.get("lifecycle")).get(hook)
        if handler is not None:
            _handler(
                errs, _dict(handler), ("exec", "httpGet", "tcpSocket", "sleep"), f"{path}.lifecycle.{hook}"
            )
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if ctr.get(probe) is not None:
            _probe(errs, _dict(ctr[probe]), probe, f"{path}.{probe}")


def _container_ports(errs: _Errors, ports: Any, path: str) -> None:
    seen: set[str] = set()
    for i, port in enumerate(_dicts(ports)):
        at = f"{path}[{i}]"
        name = port.get("name")
        if name:
            problems = port_name(str(name))
            if problems:
                errs.invalid_each(f"{at}.name", name, problems)
            elif name in seen:
                errs.duplicate(f"{at}.name", name)
            seen.add(str(name))
        number, host = _int(port.get("containerPort")), _int(port.get("hostPort"))
        if not number:
            errs.required(f"{at}.containerPort")
        else:
            errs.invalid_each(f"{at}.containerPort", number, port_number(number))
        if host:
            errs.invalid_each(f"{at}.hostPort", host, port_number(host))
        if not port.get("protocol"):
            errs.required(f"{at}.protocol")
        elif port["protocol"] not in _PROTOCOLS:
            errs.not_supported(f"{at}.protocol", port["protocol"], _PROTOCOLS)


def _volume_mounts(errs: _Errors, mounts: Any, volumes: set[str], path: str) -> None:
    paths: set[str] = set()
    for i, mount in enumerate(_dicts(mounts)):
        name, target = mount.get("name"), mount.get("mountPath")
        if not name:
            errs.required(f"{path}[{i}].name")
        elif name not in volumes:
            errs.not_found(f"{path}[{i}].name", name)
        if not target:
            errs.required(f"{path}[{i}].mountPath")
        elif target in paths:
            errs.invalid(f"{path}[{i}].mountPath", target, "must be unique")
        paths.add(str(target))


def _overcommit(name: str) -> bool:
    """Native resources but hugepages may have requests below limits."""
    native = "/" not in name or "kubernetes.io/" in name
    return native and not name.startswith("hugepages-")


def _resources(errs: _Errors, resources: Obj, path: str) -> None:
    limits: dict[str, Quantity] = {}
    for kind in ("limits", "requests"):
        for name, raw in _dict(resources.get(kind)).items():
            at = f"{path}.{kind}[{name}]"
            _resource_name(errs, name, at)
            try:
                quantity = parse_quantity(raw)
            except ValueError:
                continue  # reported by check_fields at decode time
            if quantity.value < 0:
                errs.invalid(at, str(quantity), "must be greater than or equal to 0")
            if "/" in name and "kubernetes.io/" not in name and quantity.value.denominator != 1:
                errs.invalid(at, str(quantity), "must be an integer")
            if kind == "limits":
                limits[name] = quantity
            elif name in limits:
                _request_within_limit(errs, name, quantity, limits[name], f"{path}.requests")
            elif not _overcommit(name):
                errs.required(f"{path}.limits", "Limit must be set for non overcommitable resources")


def _request_within_limit(errs: _Errors, name: str, request: Quantity, limit: Quantity, path: str) -> None:
    if not _overcommit(name) and request.value != limit.value:
        errs.invalid(path, str(request), f"must be equal to {name} limit of {limit}")
    elif request.value > limit.value:
        errs.invalid(path, str(request), f"must be less than or equal to {name} limit of {limit}")


def _resource_name(errs: _Errors, name: str, path: str) -> None:
    problems = qualified_name(name)
    errs.invalid_each(path, name, problems)
    standard = name in ("cpu", "memory", "ephemeral-storage") or name.startswith("hugepages-")
    if not problems and "/" not in name and not standard:
        errs.invalid(path, name, "must be a standard resource for containers")


def _probe(errs: _Errors, probe: Obj, kind: str, path: str) -> None:
    _handler(errs, probe, ("exec", "httpGet", "tcpSocket", "grpc"), path)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs.nonnegative(f"{path}.{key}", probe.get(key))
    grace = probe.get("terminationGracePeriodSeconds")
    if kind == "readinessProbe" and grace is not None:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must not be set for readinessProbes")
    elif isinstance(grace, int) and grace <= 0:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0")
    if kind != "readinessProbe" and probe.get("successThreshold", 1) != 1:
        errs.invalid(f"{path}.successThreshold", probe.get("successThreshold"), "must be 1")


def _handler(errs: _Errors, handler: Obj, types: tuple[str, ...], path: str) -> None:
    """Exactly one handler type (``validateHandler``), each checked."""
    found = 0
    for kind in types:
        if handler.get(kind) is None:
            continue
        if found:
            errs.forbidden(f"{path}.{kind}", "may not specify more than 1 handler type")
            continue
        found += 1
        action, at = _dict(handler[kind]), f"{path}.{kind}"
        if kind == "exec" and not action.get("command"):
            errs.required(f"{at}.command")
        elif kind in ("httpGet", "tcpSocket"):
            if kind == "httpGet" and not action.get("path"):
                errs.required(f"{at}.path")
            _port_or_name(errs, action.get("port"), f"{at}.port")
            if kind == "httpGet" and action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.not_supported(f"{at}.scheme", action.get("scheme", ""), ("HTTP", "HTTPS"))
        elif kind == "grpc":
            errs.invalid_each(f"{at}.port", _int(action.get("port")), port_number(_int(action.get("port"))))
    if not found:
        errs.required(path, "must specify a handler type")


def _port_or_name(errs: _Errors, port: Any, path: str) -> None:
    """ValidatePortNumOrName: 1..65535 or an IANA port name."""
    if isinstance(port, str):
        errs.invalid_each(path, port, port_name(port))
    else:
        errs.invalid_each(path, _int(port), port_number(_int(port)))


def _toleration(errs: _Errors, toleration: Obj, path: str) -> None:
    key, operator = toleration.get("key", ""), toleration.get("operator", "")
    if key:
        errs.invalid_each(f"{path}.key", key, qualified_name(str(key)))
    if not key and operator != "Exists":
        errs.invalid(
            f"{path}.operator",
            operator,
            'operator must be Exists when `key` is empty, which means "match all values and all keys"',
        )
    if operator not in ("", "Equal", "Exists"):
        errs.not_supported(f"{path}.operator", operator, ("Equal", "Exists"))
    effect = toleration.get("effect", "")
    if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        errs.not_supported(f"{path}.effect", effect, ("NoExecute", "NoSchedule", "PreferNoSchedule"))


def _pod(errs: _Errors, obj: Obj, old: Obj | None) -> None:
    _pod_spec(errs, _dict(obj.get("spec")), "spec")
    if old is not None:
        _pod_update(errs, _dict(obj.get("spec")), _dict(old.get("spec")))


UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _pod_update(errs: _Errors, new: Obj, old: Obj) -> None:
    """ValidatePodUpdate: only images, a shorter deadline and added tolerations may change.
    ``spec.nodeName`` may go from unset to set: the scheduler binds through an update here."""
    for key in ("containers", "initContainers"):
        if len(_list(new.get(key))) != len(_list(old.get(key))):
            errs.forbidden(f"spec.{key}", "pod updates may not add or remove containers")
            return
        for i, ctr in enumerate(_dicts(new.get(key))):
            image = str(ctr.get("image") or "")
            if not image:
                errs.required(f"spec.{key}[{i}].image")
            if image.strip() != image:
                errs.invalid(f"spec.{key}[{i}].image", image, "must not have leading or trailing whitespace")
    new_deadline, old_deadline = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if new_deadline is None and old_deadline is not None:
        errs.invalid(
            "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
        )
    elif new_deadline is not None and old_deadline is not None and new_deadline > old_deadline:
        errs.invalid(
            "spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"
        )
    kept = [_without_seconds(t) for t in _dicts(new.get("tolerations"))]
    for toleration in _dicts(old.get("tolerations")):
        if _without_seconds(toleration) not in kept:
            errs.forbidden(
                "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
            )
            break
    munged = json.loads(json.dumps(new))
    for key in ("containers", "initContainers"):
        for ctr, before in zip(_dicts(munged.get(key)), _dicts(old.get(key)), strict=True):
            ctr["image"] = before.get("image")
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates", "nodeName"):
        if key == "nodeName" and old.get(key):
            continue
        munged.pop(key, None)
        if key in old:
            munged[key] = old[key]
    if munged != old:
        diff = "\n".join(_diff(old, munged, ""))
        errs.forbidden(
            "spec",
            f"pod updates may not change fields other than {UPDATABLE_POD_FIELDS}\n"
            f"  core.PodSpec{{\n{diff}\n  }}",
        )


def _without_seconds(toleration: Obj) -> Obj:
    return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}


def _diff(old: Any, new: Any, path: str) -> list[str]:
    """Changed leaves as ``-``/``+`` lines, in the spirit of the cmp.Diff upstream appends."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            if old.get(key) != new.get(key):
                lines += _diff(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return lines
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            line
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            if a != b
            for line in _diff(a, b, f"{path}[{i}]")
        ]
    return [f"- \t{path}: {json.dumps(old)},", f"+ \t{path}: {json.dumps(new)},"]


# -- apps ----------------------------------------------------------------------------------------


def _replica_set_like(errs: _Errors, spec: Obj) -> None:
    """The part ValidateReplicaSetSpec and ValidateDeploymentSpec share: selector and template."""
    selector = spec.get("selector")
    if selector is None:
        errs.required("spec.selector")
    elif not (_dict(selector).get("matchLabels") or _dict(selector).get("matchExpressions")):
        errs.invalid("spec.selector", _go_selector(selector), "empty selector is invalid for deployment")
    else:
        _labels(errs, _dict(selector).get("matchLabels"), "spec.selector.matchLabels")
    template = _dict(spec.get("template"))
    labels = _dict(template.get("metadata")).get("labels")
    if selector is None or (selector and not _selector_matches(_dict(selector), _dict(labels))):
        errs.invalid(
            "spec.template.metadata.labels", _go_map(labels), "`selector` does not match template `labels`"
        )
    _pod_template(errs, template, "spec.template")
    template_spec = _dict(template.get("spec"))
    if template_spec.get("restartPolicy") != "Always":
        errs.not_supported(
            "spec.template.spec.restartPolicy", template_spec.get("restartPolicy", ""), ("Always",)
        )
    if template_spec.get("activeDeadlineSeconds") is not None:
        errs.forbidden(
            "spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicaSet is not Supported"
        )


def _selector_matches(selector: Obj, labels: Obj) -> bool:
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return True
    if any(labels.get(k) != v for k, v in _dict(selector.get("matchLabels")).items()):
        return False
    for expr in _dicts(selector.get("matchExpressions")):
        key, op, values = expr.get("key"), expr.get("operator"), _list(expr.get("values"))
        present = key in labels
        if (op == "In" and (not present or labels[key] not in values)) or (
            op == "NotIn" and present and labels[key] in values
        ):
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def _replicaset(errs: _Errors, obj: Obj, old: Obj | None) -> None:
    spec = _dict(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"))
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    _replica_set_like(errs, spec)
    _selector_immutable(errs, obj, old)


def _deployment(errs: _Errors, obj: Obj, old: Obj | None) -> None:
    spec = _dict(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"))
    _replica_set_like(errs, spec)
    _strategy(errs, _dict(spec.get("strategy")))
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errs.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        errs.nonnegative("spec.progressDeadlineSeconds", deadline)
        if deadline <= _int(spec.get("minReadySeconds")):
            errs.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
    _selector_immutable(errs, obj, old)


def _selector_immutable(errs: _Errors, obj: Obj, old: Obj | None) -> None:
    if old is None:
        return
    new_selector = _dict(obj.get("spec")).get("selector")
    if new_selector != _dict(old.get("spec")).get("selector"):
        errs.invalid("spec.selector", _go_selector(new_selector), "field is immutable")


def _strategy(errs: _Errors, strategy: Obj) -> None:
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            errs.forbidden(
                "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
            )
    elif kind == "RollingUpdate":
        if rolling is None:
            errs.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
        else:
            _rolling_update(errs, _dict(rolling), "spec.strategy.rollingUpdate")
    else:
        pointer = (
            "(*apps.RollingUpdateDeployment)(nil)"
            if rolling is None
            else "&apps.RollingUpdateDeployment{...}"
        )
        shown = _Raw(f"apps.DeploymentStrategy{{Type:{json.dumps(kind or '')}, RollingUpdate:{pointer}}}")
        errs.not_supported("spec.strategy", shown, ("Recreate", "RollingUpdate"))


def _int_or_percent(errs: _Errors, value: Any, path: str) -> int:
    """ValidatePositiveIntOrPercent; returns the number (percent or int) for the 0/0 check."""
    if isinstance(value, str):
        if not _RE["percent"].match(value):
            errs.invalid(
                path,
                _go_int_or_string(value),
                _regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    _PERCENT,
                    "1%",
                    "93%",
                ),
            )
            return 0
        return int(value[:-1])
    number = _int(value)
    if number < 0:
        errs.invalid(path, number, "must be greater than or equal to 0")
    return number


def _rolling_update(errs: _Errors, rolling: Obj, path: str) -> None:
    unavailable = _int_or_percent(errs, rolling.get("maxUnavailable"), f"{path}.maxUnavailable")
    surge = _int_or_percent(errs, rolling.get("maxSurge"), f"{path}.maxSurge")
    if unavailable == 0 and surge == 0:
        errs.invalid(
            f"{path}.maxUnavailable",
            _go_int_or_string(rolling.get("maxUnavailable", 0)),
            "may not be 0 when `maxSurge` is 0",
        )
    value = rolling.get("maxUnavailable")
    if isinstance(value, str) and _RE["percent"].match(value) and int(value[:-1]) > 100:
        errs.invalid(f"{path}.maxUnavailable", _go_int_or_string(value), "must not be greater than 100%")


# -- services -------------------------------------------------------------------------------------

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")


def _service(errs: _Errors, obj: Obj, old: Obj | None) -> None:
    spec = _dict(obj.get("spec"))
    kind = spec.get("type")
    ports = _dicts(spec.get("ports"))
    headless = kind == "ClusterIP" and (
        spec.get("clusterIP") == "None" or _list(spec.get("clusterIPs"))[:1] == ["None"]
    )
    if not ports and not headless and kind != "ExternalName":
        errs.required("spec.ports")
    if kind == "ExternalName":
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs.invalid_each("spec.externalName", cname, dns1123_subdomain(cname))
        else:
            errs.required("spec.externalName")
    names: set[str] = set()
    for i, port in enumerate(ports):
        _service_port(errs, port, len(ports) > 1, names, f"spec.ports[{i}]")
    _labels(errs, spec.get("selector"), "spec.selector")
    _session_affinity(errs, spec)
    if not kind:
        errs.required("spec.type")
    elif kind not in _SERVICE_TYPES:
        errs.not_supported("spec.type", kind, _SERVICE_TYPES)
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                errs.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
    _duplicate_ports(errs, ports)
    _traffic_policies(errs, spec)


def _service_port(errs: _Errors, port: Obj, require_name: bool, names: set[str], path: str) -> None:
    name = port.get("name")
    if require_name and not name:
        errs.required(f"{path}.name")
    elif name:
        errs.invalid_each(f"{path}.name", name, dns1123_label(str(name)))
        if name in names:
            errs.duplicate(f"{path}.name", name)
        names.add(str(name))
    number = _int(port.get("port"))
    errs.invalid_each(f"{path}.port", number, port_number(number))
    if not port.get("protocol"):
        errs.required(f"{path}.protocol")
    elif port["protocol"] not in _PROTOCOLS:
        errs.not_supported(f"{path}.protocol", port["protocol"], _PROTOCOLS)
    _port_or_name(errs, port.get("targetPort"), f"{path}.targetPort")


def _session_affinity(errs: _Errors, spec: Obj) -> None:
    affinity = spec.get("sessionAffinity")
    if not affinity:
        errs.required("spec.sessionAffinity")
    elif affinity not in ("ClientIP", "None"):
        errs.not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None"))
    elif affinity == "ClientIP":
        timeout = _dict(_dict(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
        path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        if timeout is None:
            errs.required(path, "when session affinity type is ClientIP")
        elif not 0 < _int(timeout) <= MAX_CLIENT_IP_TIMEOUT:
            errs.invalid(path, timeout, f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}")
    elif spec.get("sessionAffinityConfig") is not None:
        errs.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")


def _duplicate_ports(errs: _Errors, ports: list[Obj]) -> None:
    node_ports: set[tuple[Any, Any]] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        node_key = (port.get("protocol"), port.get("nodePort"))
        if port.get("nodePort"):
            if node_key in node_ports:
                errs.duplicate(f"spec.ports[{i}].nodePort", port["nodePort"])
            node_ports.add(node_key)
    for i, port in enumerate(ports):
        key = (port.get("protocol"), port.get("port"))
        if key in seen:
            errs.duplicate(
                f"spec.ports[{i}]",
                _Raw(
                    f'core.ServicePort{{Name:"", Protocol:{json.dumps(key[0] or "")}, '
                    f"AppProtocol:(*string)(nil), Port:{_int(key[1])}, "
                    f'TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, '
                    f"NodePort:0}}"
                ),
            )
        seen.add(key)


def _traffic_policies(errs: _Errors, spec: Obj) -> None:
    kind = spec.get("type")
    external = kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))
    policy = spec.get("externalTrafficPolicy")
    if not external and policy:
        errs.invalid(
            "spec.externalTrafficPolicy", policy, "may only be set for externally-accessible services"
        )
    elif external and not policy:
        errs.required("spec.externalTrafficPolicy")
    elif external and policy not in ("Cluster", "Local"):
        errs.not_supported("spec.externalTrafficPolicy", policy, ("Cluster", "Local"))
    internal = spec.get("internalTrafficPolicy")
    if internal is not None and internal not in ("Cluster", "Local"):
        errs.not_supported("spec.internalTrafficPolicy", internal, ("Cluster", "Local"))


# -- config maps and secrets -----------------------------------------------------------------------


def _configmap(errs: _Errors, obj: Obj, old: Obj | None) -> None:
    data, binary = _dict(obj.get("data")), _dict(obj.get("binaryData"))
    size = 0
    for key, value in data.items():
        errs.invalid_each(f"data[{key}]", key, config_key(key))
        if key in binary:
            errs.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
        size += len(str(value).encode())
    for key, value in binary.items():
        errs.invalid_each(f"binaryData[{key}]", key, config_key(key))
        size += _decoded_size(value)
    if size > MAX_SECRET_SIZE:
        errs.too_long("", MAX_SECRET_SIZE)
    _immutable_data(errs, obj, old, ("data", "binaryData"))


def _secret(errs: _Errors, obj: Obj, old: Obj | None) -> None:
    data = _dict(obj.get("data"))
    for key in data:
        errs.invalid_each(f"data[{key}]", key, config_key(key))
    if sum(_decoded_size(v) for v in data.values()) > MAX_SECRET_SIZE:
        errs.too_long("data", MAX_SECRET_SIZE)
    required = {
        "kubernetes.io/tls": ("tls.crt", "tls.key"),
        "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
        "kubernetes.io/dockercfg": (".dockercfg",),
        "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    }.get(str(obj.get("type")), ())
    for key in required:
        if key not in data:
            errs.required(f"data[{key}]")
    if old is not None and obj.get("type") != old.get("type"):
        errs.invalid("type", obj.get("type"), "field is immutable")
    _immutable_data(errs, obj, old, ("data",))


def _decoded_size(value: Any) -> int:
    text = str(value or "")
    return len(text.replace("\n", "").replace("\r", "")) * 3 // 4 - text.count("=")


def _immutable_data(errs: _Errors, obj: Obj, old: Obj | None, keys: tuple[str, ...]) -> None:
    if old is None or old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        errs.forbidden("immutable", "field is immutable when `immutable` is set")
    for key in keys:
        if obj.get(key) != old.get(key):
            errs.forbidden(key, "field is immutable when `immutable` is set")


# -- entry point ------------------------------------------------------------------------------------

_NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "Namespace": dns1123_label,
    "Service": dns1035_label,
}
_KIND_RULES: dict[str, Callable[[_Errors, Obj, Obj | None], None]] = {
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "Service": _service,
    "ConfigMap": _configmap,
    "Secret": _secret,
}


def validate(rt: ResourceType, obj: Obj, *, old: Obj | None = None) -> None:
    """Raise 422 Invalid listing every problem in ``obj`` (``old`` is the stored object on update)."""
    errs = _Errors()
    meta = _dict(obj.get("metadata"))
    _object_meta(errs, meta, _NAME_RULES.get(rt.kind, dns1123_subdomain), rt.namespaced)
    rule = _KIND_RULES.get(rt.kind)
    if rule is not None:
        rule(errs, obj, old)
    if errs.causes:
        raise invalid(rt, str(meta.get("name") or meta.get("generateName") or ""), errs.causes)
