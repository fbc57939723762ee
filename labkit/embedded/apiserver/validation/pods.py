"""Pods and pod templates (``ValidatePodSpec``, ``ValidatePodUpdate``); containers live in ``containers``."""

from __future__ import annotations

import json
from typing import Any

from labkit.embedded.apiserver.validation.coerce import Obj, as_dict, as_dicts, as_list
from labkit.embedded.apiserver.validation.containers import validate_container, validate_enum
from labkit.embedded.apiserver.validation.errors import Errors
from labkit.embedded.apiserver.validation.metadata import validate_annotations, validate_labels
from labkit.embedded.apiserver.validation.names import dns1123_label, dns1123_subdomain, qualified_name


def validate_pod_template(errs: Errors, template: Obj, path: str) -> None:
    """ValidatePodTemplateSpec (labels and annotations sit at ``<path>.labels`` upstream)."""
    meta = as_dict(template.get("metadata"))
    validate_labels(errs, meta.get("labels"), f"{path}.labels")
    validate_annotations(errs, meta.get("annotations"), f"{path}.annotations")
    _pod_spec(errs, as_dict(template.get("spec")), f"{path}.spec")


def _pod_spec(errs: Errors, spec: Obj, path: str) -> None:
    if spec.get("terminationGracePeriodSeconds") is None:
        errs.required(f"{path}.terminationGracePeriodSeconds")
    volumes = _volumes(errs, spec.get("volumes"), f"{path}.volumes")
    containers = as_dicts(spec.get("containers"))
    if not containers:
        errs.required(f"{path}.containers")
    names: set[str] = set()
    for key in ("containers", "initContainers"):
        for i, ctr in enumerate(as_dicts(spec.get(key))):
            validate_container(errs, ctr, volumes, names, f"{path}.{key}[{i}]")
    validate_enum(errs, spec.get("restartPolicy"), ("Always", "OnFailure", "Never"), f"{path}.restartPolicy")
    validate_enum(
        errs,
        spec.get("dnsPolicy"),
        ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
        f"{path}.dnsPolicy",
    )
    validate_labels(errs, spec.get("nodeSelector"), f"{path}.nodeSelector")
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
    for i, toleration in enumerate(as_dicts(spec.get("tolerations"))):
        _toleration(errs, toleration, f"{path}.tolerations[{i}]")


def _volumes(errs: Errors, volumes: Any, path: str) -> set[str]:
    names: set[str] = set()
    for i, volume in enumerate(as_dicts(volumes)):
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


def _toleration(errs: Errors, toleration: Obj, path: str) -> None:
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


def validate_pod(errs: Errors, obj: Obj, old: Obj | None) -> None:
    """A Pod on create, and the update rules when ``old`` is given."""
    _pod_spec(errs, as_dict(obj.get("spec")), "spec")
    if old is not None:
        _pod_update(errs, as_dict(obj.get("spec")), as_dict(old.get("spec")))


UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _pod_update(errs: Errors, new: Obj, old: Obj) -> None:
    """ValidatePodUpdate: only images, a shorter deadline and added tolerations may change.
    ``spec.nodeName`` may go from unset to set: the scheduler binds through an update here."""
    for key in ("containers", "initContainers"):
        if len(as_list(new.get(key))) != len(as_list(old.get(key))):
            errs.forbidden(f"spec.{key}", "pod updates may not add or remove containers")
            return
        for i, ctr in enumerate(as_dicts(new.get(key))):
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
    kept = [_without_seconds(t) for t in as_dicts(new.get("tolerations"))]
    for toleration in as_dicts(old.get("tolerations")):
        if _without_seconds(toleration) not in kept:
            errs.forbidden(
                "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
            )
            break
    munged = json.loads(json.dumps(new))
    for key in ("containers", "initContainers"):
        for ctr, before in zip(as_dicts(munged.get(key)), as_dicts(old.get(key)), strict=True):
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
