"""What a resource request asks for beyond its URL: boolean flags, selectors, ``dryRun``, Table output.

Read from the query string (``?watch``, ``?labelSelector``, ``?fieldSelector``, ``?dryRun``) and
the ``Accept`` header (``as=Table``); a value kube-apiserver refuses is a 400 here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from labkit.embedded.apiserver import fieldlabels
from labkit.embedded.apiserver.field_selectors import field_paths, parse_field_selector
from labkit.embedded.apiserver.label_parser import parse_label_selector
from labkit.embedded.apiserver.selector_errors import SelectorError
from labkit.embedded.apiserver.status import bad_request
from labkit.embedded.resources import ResourceType

TRUE = {"true", "1", "yes"}


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter, case-insensitively."""
    return request.query.get(name, "").lower() in TRUE


def wants_table(request: web.Request) -> bool:
    """True when the client asked for ``meta.k8s.io`` Table output."""
    return "as=Table" in request.headers.get("Accept", "").replace(" ", "")


def selection(request: web.Request, rt: ResourceType) -> tuple[Callable[[dict[str, Any]], bool], bool]:
    """The request's ``labelSelector`` and ``fieldSelector`` as one predicate over objects of ``rt``,
    and whether either was given (400 for a selector that does not parse or an unsupported field label).
    """
    label_text = request.query.get("labelSelector", "")
    field_text = request.query.get("fieldSelector", "")
    try:
        labels = parse_label_selector(label_text) if label_text else None
        fields = parse_field_selector(field_text) if field_text else None
    except SelectorError as e:
        raise bad_request(f"unable to parse requirement: {e}") from e
    if field_text:
        fieldlabels.check(rt, field_paths(field_text))

    def matches(obj: dict[str, Any]) -> bool:
        if labels is not None and not labels(obj["metadata"].get("labels") or {}):
            return False
        return fields is None or fields(obj)

    return matches, bool(label_text or field_text)


def is_dry_run(request: web.Request) -> bool:
    """Whether the request is a dry run (``?dryRun=All``); 400 for any other ``dryRun`` value."""
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise bad_request(f'Invalid dryRun value "{value}": supported values: "All"')
    return bool(values)
