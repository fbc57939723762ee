"""ConfigMaps and Secrets: data keys, size limits, required keys per type and immutability."""

from __future__ import annotations

from typing import Any

from labkit.embedded.apiserver.validation.coerce import Obj, as_dict
from labkit.embedded.apiserver.validation.errors import Errors
from labkit.embedded.apiserver.validation.names import config_key

MAX_SECRET_SIZE = 1024 * 1024


def validate_configmap(errs: Errors, obj: Obj, old: Obj | None) -> None:
    """ValidateConfigMap: data keys, no key in both maps, total size, immutability."""
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
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


def validate_secret(errs: Errors, obj: Obj, old: Obj | None) -> None:
    """ValidateSecret: data keys, total size, the keys its type requires, immutability."""
    data = as_dict(obj.get("data"))
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


def _immutable_data(errs: Errors, obj: Obj, old: Obj | None, keys: tuple[str, ...]) -> None:
    if old is None or old.get("immutable") is not True:
        return
    if obj.get("immutable") is not True:
        errs.forbidden("immutable", "field is immutable when `immutable` is set")
    for key in keys:
        if obj.get(key) != old.get(key):
            errs.forbidden(key, "field is immutable when `immutable` is set")
