"""The structured ``metav1.LabelSelector``: matched against labels and printed in selector syntax.

That is ``spec.selector`` of a Deployment or ReplicaSet, ``{matchLabels, matchExpressions}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labkit.embedded.apiserver.label_requirements import (
    EQ,
    EXISTS,
    IN,
    NOT_EXISTS,
    NOT_IN,
    Requirement,
    matcher,
    new_requirement,
)
from labkit.embedded.apiserver.selector_errors import SelectorError

_EXPRESSION_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": NOT_EXISTS}


def _structured_requirements(selector: Mapping[str, Any]) -> list[Requirement]:
    unknown = sorted(set(selector) - {"matchLabels", "matchExpressions"})
    if unknown:
        raise SelectorError(
            f'unknown field "{unknown[0]}" in label selector: expected matchLabels and/or matchExpressions'
        )
    out = [new_requirement(k, EQ, (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        operator = expr.get("operator")
        if operator not in _EXPRESSION_OPERATORS:
            raise SelectorError(
                f'matchExpressions[{i}].operator: "{operator}" is not a valid label selector operator '
                "(In, NotIn, Exists, DoesNotExist)"
            )
        op = _EXPRESSION_OPERATORS[operator]
        out.append(new_requirement(expr.get("key") or "", op, expr.get("values") or ()))
    return sorted(out, key=lambda r: r.key)


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a ``metav1.LabelSelector`` (``{matchLabels, matchExpressions}``).

    As upstream (``LabelSelectorAsSelector``): a ``None`` selector matches nothing; an empty one
    (``{}``, or both lists empty) matches everything; all terms must hold. Raises
    :class:`SelectorError` for an unknown operator, bad key or value, or a field that is not
    ``matchLabels``/``matchExpressions`` (a plain ``{"app": "web"}`` map is not a LabelSelector).
    """
    if selector is None:
        return False
    return matcher(_structured_requirements(selector))(labels or {})


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """A ``metav1.LabelSelector`` in label-selector syntax, terms sorted by key: ``app=web,tier in (a,b)``.

    This is ``Scale.status.selector`` and what ``-o wide`` shows. ``None`` or an empty selector gives
    ``""``. Raises :class:`SelectorError` for an invalid selector.
    """
    if selector is None:
        return ""
    return ",".join(str(r) for r in _structured_requirements(selector))
