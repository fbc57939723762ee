"""Strategic merge patch (``application/strategic-merge-patch+json``), as kube-apiserver applies it.

What kubectl's client-side apply, ``set image``, ``rollout restart``, ``label``/``annotate``/
``cordon`` and the Python client's dict patches send, and what server-side apply merges here.
Maps merge, ``null`` deletes a key, and lists either merge element by element on a *merge key*
(containers by ``name``) or are replaced whole; which lists merge is the table of
:mod:`~labkit.embedded.apiserver.merge_keys`.

The directives follow k8s.io/apimachinery ``pkg/util/strategicpatch``:

- ``{"$patch": "replace"}`` in a map replaces the map; ``"delete"`` empties it. As an element
  of a merging list, ``{"$patch": "replace"}`` replaces the whole list with the other
  elements, and ``{"name": "x", "$patch": "delete"}`` removes the element whose key is ``x``.
  ``"merge"`` is the default and is accepted (upstream rejects it as an unknown patch type).
- ``$retainKeys: [...]`` clears every key of the map that the list does not name
  (kubectl sends it for ``spec.strategy`` and for volumes when their kind of source changes).
- ``$setElementOrder/<list>: [...]`` gives the order of the list's elements after the merge;
  elements only the server has keep their place relative to the others.
- ``$deleteFromPrimitiveList/<list>: [...]`` removes values from a merging list of strings
  (``metadata.finalizers``), which otherwise merges as a set.

Every failure is a :class:`~labkit.embedded.apiserver.patch_errors.PatchError` whose message
names the field at fault.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labkit.embedded.apiserver.merge_keys import merge_keys_for
from labkit.embedded.apiserver.patch_errors import PatchError, json_type

# --- Small helpers ---------------------------------------------------------------------


def _identity(value: Any) -> str:
    """A hashable stand-in for a JSON value, so lists can be compared as sets."""
    return json.dumps(value, sort_keys=True)


def _unknown_patch_directive(where: object, directive: Any) -> PatchError:
    return PatchError(f'{where}: unknown $patch directive "{directive}" (expected replace, delete or merge)')


@dataclass(frozen=True)
class _Field:
    """Where a merge is: the schema path (field names only) and a readable label for errors."""

    path: tuple[str, ...] = ()
    label: str = ""

    def child(self, name: str) -> _Field:
        return _Field((*self.path, name), f"{self.label}.{name}" if self.label else name)

    def element(self, tag: str) -> _Field:
        return _Field(self.path, f"{self.label}[{tag}]")

    def __str__(self) -> str:
        return self.label or "patch"


def _positions(ids: list[str | None]) -> dict[str, int]:
    """Index of the first occurrence of each id."""
    found: dict[str, int] = {}
    for index, ident in enumerate(ids):
        if ident is not None:
            found.setdefault(ident, index)
    return found


def _interleave(server_only: list[Any], patched: list[Any], rank: Callable[[Any], int | None]) -> list[Any]:
    """Merge two ordered lists the way upstream ``mergeSortedSlice`` does.

    A server-only element goes first only when both elements have a place in the live
    list and the server-only one comes earlier there; otherwise the patched one goes first.
    """
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(patched):
        left, right = rank(server_only[i]), rank(patched[j])
        if left is not None and right is not None and left < right:
            out.append(server_only[i])
            i += 1
        else:
            out.append(patched[j])
            j += 1
    return out + server_only[i:] + patched[j:]


def _arrange(
    merged: list[Any], ident: Callable[[Any], str | None], wanted: list[str | None], live: list[str | None]
) -> list[Any]:
    """Order ``merged``: elements named in ``wanted`` in that order, the rest by ``live`` order."""
    wanted_at, live_at = _positions(wanted), _positions(live)

    def live_rank(element: Any) -> int | None:
        found = ident(element)
        return None if found is None else live_at.get(found)

    in_patch = sorted((e for e in merged if ident(e) in wanted_at), key=lambda e: wanted_at[ident(e)])
    server_only = [e for e in merged if ident(e) not in wanted_at]
    server_only.sort(key=lambda e: (live_rank(e) is None, live_rank(e) or 0))  # unranked ones last
    return _interleave(server_only, in_patch, live_rank)


# --- Strategic merge patch --------------------------------------------------------------


class _StrategicMerge:
    """One strategic merge of a patch into an object of one kind."""

    def __init__(self, kind: str) -> None:
        self.merge_keys = merge_keys_for(kind)

    # Maps

    def merge_map(self, original: dict[str, Any], patch: dict[str, Any], at: _Field) -> dict[str, Any]:
        """``patch`` merged into ``original`` (which this merge owns and may reuse)."""
        directive = patch.get("$patch", "merge")
        if directive == "delete":
            return {}
        if directive == "replace":
            return self.merge_map({}, {k: v for k, v in patch.items() if k != "$patch"}, at)
        if directive != "merge":
            raise _unknown_patch_directive(at, directive)
        self._check_directives(patch, at)
        result = dict(original)
        self._retain_keys(result, patch, at)
        ordered = [key.split("/", 1)[1] for key in patch if key.startswith("$setElementOrder/")]
        for name in ordered:
            self._order_list(result, name, patch, at)
        for key, value in patch.items():
            if not key.startswith("$") and key not in ordered:
                self._merge_field(result, key, value, at.child(key))
        for key, values in patch.items():
            if key.startswith("$deleteFromPrimitiveList/"):
                self._delete_from_list(result, key.split("/", 1)[1], values, at)
        return result

    @staticmethod
    def _check_directives(patch: dict[str, Any], at: _Field) -> None:
        for key in patch:
            if not key.startswith("$") or key in ("$patch", "$retainKeys"):
                continue
            prefix, _, name = key.partition("/")
            if prefix not in ("$setElementOrder", "$deleteFromPrimitiveList") or not name:
                raise PatchError(f'{at}: unknown directive "{key}"')

    @staticmethod
    def _retain_keys(result: dict[str, Any], patch: dict[str, Any], at: _Field) -> None:
        if "$retainKeys" not in patch:
            return
        keep = patch["$retainKeys"]
        if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
            raise PatchError(f"{at}.$retainKeys: must be a list of field names")
        for key, value in patch.items():
            if value is not None and not key.startswith("$") and key not in keep:
                raise PatchError(f'{at}: field "{key}" is in the patch but not in $retainKeys {keep}')
        for key in list(result):
            if key not in keep:
                del result[key]

    def _merge_field(self, result: dict[str, Any], key: str, value: Any, at: _Field) -> None:
        current = result.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            result[key] = self.merge_map(current, value, at)
        elif isinstance(value, list) and isinstance(current, list):
            result[key] = self.merge_list(current, value, at)
        elif isinstance(value, dict) and value.get("$patch") == "delete":
            result.pop(key, None)
        else:
            result[key] = self.fresh(value, at)

    def fresh(self, value: Any, at: _Field) -> Any:
        """A patch value stored where nothing merges with it: a copy with the directives applied."""
        if isinstance(value, dict):
            return self.merge_map({}, value, at)
        if isinstance(value, list):
            return self.merge_list([], value, at)
        return value

    # Lists

    def merge_list(self, current: list[Any], patch: list[Any], at: _Field) -> list[Any]:
        """``patch`` merged into the list ``current`` by the list's merge key, or replacing it."""
        key = self.merge_keys.get(at.path)
        items, replace, deleted = self._split_list_directives(patch, key, at)
        if key is None or replace:
            return [self.fresh(item, at.element(str(i))) for i, item in enumerate(items)]
        ident = self._identifier(key)
        kept = [e for e in current if ident(e) not in deleted]
        merged = self._merge_elements(kept, items, key, at) if key else self._union(kept, items)
        return _arrange(merged, ident, [ident(e) for e in items], [ident(e) for e in kept])

    def _split_list_directives(
        self, patch: list[Any], key: str | None, at: _Field
    ) -> tuple[list[Any], bool, set[str]]:
        """The patch's plain elements, whether it replaces the list, and the keys it deletes."""
        items: list[Any] = []
        replace = False
        deleted: set[str] = set()
        for index, element in enumerate(patch):
            where = at.element(str(index))
            directive = element.get("$patch") if isinstance(element, dict) else None
            if directive == "replace":
                replace = True
            elif directive == "delete":
                if not key:
                    raise PatchError(
                        f"{where}: $patch: delete needs a list with a merge key, and {at} has none"
                    )
                self._require_merge_key(element, key, where)
                deleted.add(_identity(element[key]))
            elif directive not in (None, "merge"):
                raise _unknown_patch_directive(where, directive)
            else:
                if key:
                    self._require_merge_key(element, key, where)
                items.append(element)
        return items, replace, deleted

    @staticmethod
    def _require_merge_key(element: Any, key: str, where: _Field) -> None:
        if not isinstance(element, dict) or key not in element:
            raise PatchError(f'{where}: does not contain declared merge key "{key}"')

    @staticmethod
    def _identifier(key: str) -> Callable[[Any], str | None]:
        """How elements of a merging list are told apart: by merge key, or by value."""
        if not key:
            return _identity
        return lambda e: _identity(e[key]) if isinstance(e, dict) and key in e else None

    def _merge_elements(self, kept: list[Any], items: list[Any], key: str, at: _Field) -> list[Any]:
        ident = self._identifier(key)
        merged = list(kept)
        for item in items:
            where = at.element(f"{key}={item[key]}")
            match = next((i for i, e in enumerate(merged) if ident(e) == ident(item)), None)
            if match is None:
                merged.append(self.fresh(item, where))
            else:
                merged[match] = self.merge_map(merged[match], item, where)
        return merged

    @staticmethod
    def _union(kept: list[Any], items: list[Any]) -> list[Any]:
        seen: set[str] = set()
        union = []
        for value in kept + items:
            if _identity(value) not in seen:
                seen.add(_identity(value))
                union.append(copy.deepcopy(value))
        return union

    def _order_list(self, result: dict[str, Any], name: str, patch: dict[str, Any], at: _Field) -> None:
        """Merge the list ``name`` (if patched) and order it by ``$setElementOrder/<name>``."""
        field, order = at.child(name), patch[f"$setElementOrder/{name}"]
        key = self.merge_keys.get(field.path)
        if key is None:
            raise PatchError(
                f"{field}: $setElementOrder applies only to lists that merge, and {field} does not"
            )
        if not isinstance(order, list):
            raise PatchError(f"{at}.$setElementOrder/{name}: must be a list, not {json_type(order)}")
        if key:
            for index, element in enumerate(order):
                self._require_merge_key(
                    element, key, _Field(field.path, f"{at}.$setElementOrder/{name}[{index}]")
                )
        patched = patch.get(name)
        if name in patch and not isinstance(patched, list):
            raise PatchError(f"{field}: must be a list, not {json_type(patched)}")
        current = result.get(name)
        live = current if isinstance(current, list) else []
        if patched is None and not isinstance(current, list):
            return
        merged = live if patched is None else self.merge_list(live, patched, field)
        ident = self._identifier(key)
        self._check_order(patched or [], order, ident, field)
        result[name] = _arrange(merged, ident, [ident(e) for e in order], [ident(e) for e in live])

    @staticmethod
    def _check_order(
        patched: list[Any], order: list[Any], ident: Callable[[Any], str | None], at: _Field
    ) -> None:
        """Upstream's rule: the patch's elements appear in ``$setElementOrder`` in the same order."""
        wanted = iter(ident(e) for e in order)
        for element in patched:
            if isinstance(element, dict) and "$patch" in element:
                continue
            if ident(element) not in wanted:
                raise PatchError(f"{at}: the order of the patch list does not match $setElementOrder")

    def _delete_from_list(self, result: dict[str, Any], name: str, values: Any, at: _Field) -> None:
        field = at.child(name)
        if self.merge_keys.get(field.path) != "":
            raise PatchError(
                f"{field}: $deleteFromPrimitiveList applies only to merging lists of strings "
                "such as metadata.finalizers"
            )
        if not isinstance(values, list):
            raise PatchError(f"{at}.$deleteFromPrimitiveList/{name}: must be a list, not {json_type(values)}")
        current = result.get(name)
        if isinstance(current, list):
            gone = {_identity(v) for v in values}
            result[name] = [v for v in current if _identity(v) not in gone]


def strategic_merge(original: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """``original`` with a strategic merge patch applied, as kube-apiserver applies it to ``kind``.

    Returns a new dict; neither argument is changed. Kinds without merging lists of their
    own (ConfigMap, Scale, ...) still merge ``metadata.finalizers`` and ``ownerReferences``.
    """
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, not {json_type(patch)}")
    return _StrategicMerge(kind).merge_map(copy.deepcopy(original), patch, _Field())
