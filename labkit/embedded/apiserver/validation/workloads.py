"""Deployments and ReplicaSets (``pkg/apis/apps/validation``)."""

from __future__ import annotations

import json
import re
from typing import Any

from labkit.embedded.apiserver.validation.coerce import Obj, as_dict, as_dicts, as_int, as_list
from labkit.embedded.apiserver.validation.errors import Errors, Raw, go_int_or_string, go_map, go_selector
from labkit.embedded.apiserver.validation.metadata import validate_labels
from labkit.embedded.apiserver.validation.names import regex_error
from labkit.embedded.apiserver.validation.pods import validate_pod_template

_PERCENT = "[0-9]+%"
_PERCENT_RE = re.compile("^" + _PERCENT + "$")


def _replica_set_like(errs: Errors, spec: Obj) -> None:
    """The part ValidateReplicaSetSpec and ValidateDeploymentSpec share: selector and template."""
    selector = spec.get("selector")
    if selector is None:
        errs.required("spec.selector")
    elif not (as_dict(selector).get("matchLabels") or as_dict(selector).get("matchExpressions")):
        errs.invalid("spec.selector", go_selector(selector), "empty selector is invalid for deployment")
    else:
        validate_labels(errs, as_dict(selector).get("matchLabels"), "spec.selector.matchLabels")
    template = as_dict(spec.get("template"))
    labels = as_dict(template.get("metadata")).get("labels")
    if selector is None or (selector and not _selector_matches(as_dict(selector), as_dict(labels))):
        errs.invalid(
            "spec.template.metadata.labels", go_map(labels), "`selector` does not match template `labels`"
        )
    validate_pod_template(errs, template, "spec.template")
    template_spec = as_dict(template.get("spec"))
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
    if any(labels.get(k) != v for k, v in as_dict(selector.get("matchLabels")).items()):
        return False
    for expr in as_dicts(selector.get("matchExpressions")):
        key, op, values = expr.get("key"), expr.get("operator"), as_list(expr.get("values"))
        present = key in labels
        if (op == "In" and (not present or labels[key] not in values)) or (
            op == "NotIn" and present and labels[key] in values
        ):
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def validate_replicaset(errs: Errors, obj: Obj, old: Obj | None) -> None:
    """A ReplicaSet: counts, selector, template; the selector is immutable on update."""
    spec = as_dict(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"))
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    _replica_set_like(errs, spec)
    _selector_immutable(errs, obj, old)


def validate_deployment(errs: Errors, obj: Obj, old: Obj | None) -> None:
    """A Deployment: counts, selector, template, strategy and deadlines; selector immutable."""
    spec = as_dict(obj.get("spec"))
    errs.nonnegative("spec.replicas", spec.get("replicas"))
    _replica_set_like(errs, spec)
    _strategy(errs, as_dict(spec.get("strategy")))
    errs.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    errs.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        errs.nonnegative("spec.progressDeadlineSeconds", deadline)
        if deadline <= as_int(spec.get("minReadySeconds")):
            errs.invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
    _selector_immutable(errs, obj, old)


def _selector_immutable(errs: Errors, obj: Obj, old: Obj | None) -> None:
    if old is None:
        return
    new_selector = as_dict(obj.get("spec")).get("selector")
    if new_selector != as_dict(old.get("spec")).get("selector"):
        errs.invalid("spec.selector", go_selector(new_selector), "field is immutable")


def _strategy(errs: Errors, strategy: Obj) -> None:
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
            _rolling_update(errs, as_dict(rolling), "spec.strategy.rollingUpdate")
    else:
        pointer = (
            "(*apps.RollingUpdateDeployment)(nil)"
            if rolling is None
            else "&apps.RollingUpdateDeployment{...}"
        )
        shown = Raw(f"apps.DeploymentStrategy{{Type:{json.dumps(kind or '')}, RollingUpdate:{pointer}}}")
        errs.not_supported("spec.strategy", shown, ("Recreate", "RollingUpdate"))


def _int_or_percent(errs: Errors, value: Any, path: str) -> int:
    """ValidatePositiveIntOrPercent; returns the number (percent or int) for the 0/0 check."""
    if isinstance(value, str):
        if not _PERCENT_RE.match(value):
            errs.invalid(
                path,
                go_int_or_string(value),
                regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    _PERCENT,
                    "1%",
                    "93%",
                ),
            )
            return 0
        return int(value[:-1])
    number = as_int(value)
    if number < 0:
        errs.invalid(path, number, "must be greater than or equal to 0")
    return number


def _rolling_update(errs: Errors, rolling: Obj, path: str) -> None:
    unavailable = _int_or_percent(errs, rolling.get("maxUnavailable"), f"{path}.maxUnavailable")
    surge = _int_or_percent(errs, rolling.get("maxSurge"), f"{path}.maxSurge")
    if unavailable == 0 and surge == 0:
        errs.invalid(
            f"{path}.maxUnavailable",
            go_int_or_string(rolling.get("maxUnavailable", 0)),
            "may not be 0 when `maxSurge` is 0",
        )
    value = rolling.get("maxUnavailable")
    if isinstance(value, str) and _PERCENT_RE.match(value) and int(value[:-1]) > 100:
        errs.invalid(f"{path}.maxUnavailable", go_int_or_string(value), "must not be greater than 100%")
