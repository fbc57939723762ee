"""ObjectMeta: names, namespace, labels and annotations (``ValidateObjectMeta``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labkit.embedded.apiserver.validation.coerce import Obj, as_dict
from labkit.embedded.apiserver.validation.errors import Errors, Raw
from labkit.embedded.apiserver.validation.names import (
    dns1123_label,
    label_value,
    mask_trailing_dash,
    qualified_name,
)

TOTAL_ANNOTATION_SIZE = 256 * 1024


def validate_object_meta(
    errs: Errors, meta: Obj, name_rule: Callable[[str], list[str]], namespaced: bool
) -> None:
    """Name (or generateName) by ``name_rule``, namespace, generation, labels and annotations."""
    generate = meta.get("generateName")
    if generate:
        errs.invalid_each("metadata.generateName", generate, name_rule(mask_trailing_dash(str(generate))))
    name = meta.get("name")
    if not name:
        errs.required("metadata.name", "name or generateName is required")
    else:
        errs.invalid_each("metadata.name", name, name_rule(str(name)))
    if namespaced and meta.get("namespace"):
        errs.invalid_each("metadata.namespace", meta["namespace"], dns1123_label(str(meta["namespace"])))
    errs.nonnegative("metadata.generation", meta.get("generation"))
    validate_labels(errs, meta.get("labels"), "metadata.labels")
    validate_annotations(errs, meta.get("annotations"), "metadata.annotations")
    validate_owner_references(errs, meta.get("ownerReferences"))


def validate_owner_references(errs: Errors, refs: Any) -> None:
    """``validateOwnerReference``: apiVersion (with a version), kind, name and uid are required;
    at most one reference is the controller."""
    path = "metadata.ownerReferences"
    controllers = 0
    for ref in refs if isinstance(refs, list) else []:
        ref = as_dict(ref)
        api_version = str(ref.get("apiVersion") or "")
        if not api_version.rsplit("/", 1)[-1]:
            errs.invalid(f"{path}.apiVersion", api_version, "version must not be empty")
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.invalid(f"{path}.{key}", str(ref.get(key) or ""), f"{key} must not be empty")
        controllers += ref.get("controller") is True
    if controllers > 1:
        errs.invalid(path, Raw(f"{len(refs)} references"), "Only one reference can have Controller set")


def validate_labels(errs: Errors, labels: Any, path: str) -> None:
    """Label keys as qualified names and values as label values."""
    for key, value in as_dict(labels).items():
        errs.invalid_each(path, key, qualified_name(key))
        errs.invalid_each(path, value, label_value(str(value)))


def validate_annotations(errs: Errors, annotations: Any, path: str) -> None:
    """Annotation keys as qualified names and their total size."""
    annotations = as_dict(annotations)
    for key in annotations:
        errs.invalid_each(path, key, qualified_name(key.lower()))
    if sum(len(k) + len(str(v)) for k, v in annotations.items()) > TOTAL_ANNOTATION_SIZE:
        errs.too_long(path, TOTAL_ANNOTATION_SIZE)
