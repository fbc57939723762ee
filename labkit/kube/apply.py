"""Applying manifests as ``kubectl apply --server-side`` does, and deleting and diffing them.

Every document of a multi-document YAML text is sent as a server-side apply patch
(``PATCH`` with ``application/apply-patch+yaml``, ``fieldManager=labkit``, ``force=true``,
strict field validation). The result per object is the action kubectl's client-side apply
prints: ``created``, ``configured`` or ``unchanged`` (from the resourceVersion before and after).

Errors a learner meets here are :class:`~labkit.errors.ManifestError`: a YAML syntax error with
its line, an invalid manifest with the fields the API server named, a kind the cluster does
not serve with the nearest kinds it does.
"""

from __future__ import annotations

import copy
import difflib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import ClusterError, ManifestError, UsageError
from labkit.kube.http import Api, Resource
from labkit.kube.poll import poll_until

FIELD_MANAGER = "labkit"
APPLY_QUERY = {"fieldManager": FIELD_MANAGER, "force": "true", "fieldValidation": "Strict"}
NOISY_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


@dataclass(frozen=True)
class Manifest:
    """One document of a manifest text."""

    obj: dict[str, Any]
    document: int  # 1-based
    line: int  # the line the document starts on, 1-based

    @property
    def api_version(self) -> str:
        """``apiVersion`` as written."""
        return str(self.obj.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        """``kind`` as written."""
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return str(self.obj.get("metadata", {}).get("name", ""))

    @property
    def where(self) -> str:
        """ "document 2, line 14": where to look in the text."""
        return f"document {self.document}, line {self.line}"


@dataclass(frozen=True)
class Applied:
    """One object applied (or deleted), as kubectl reports it: ``deployment.apps/web configured``."""

    kind: str
    name: str
    namespace: str | None
    action: str  # "created", "configured", "unchanged", "deleted" or "not found"
    ready: bool | None = None  # after a wait: whether it became ready; None when not waited for
    group: str = ""  # the API group ("apps"), empty for the core group

    @property
    def ref(self) -> str:
        """``deployment.apps/web``: the name kubectl prints."""
        return f"{self.kind.lower()}{'.' + self.group if self.group else ''}/{self.name}"

    def __str__(self) -> str:
        return f"{self.ref} {self.action}"


# -- parsing ------------------------------------------------------------------------------------


def manifest_text(manifests: str | Path) -> str:
    """The YAML text: a Path or the name of an existing file is read, anything else is the text."""
    if isinstance(manifests, Path):
        return manifests.read_text()
    if "\n" not in manifests and manifests.strip().endswith((".yaml", ".yml", ".json")):
        path = Path(manifests.strip()).expanduser()
        if not path.is_file():
            raise UsageError(f"no manifest file {path}", "pass YAML text, or the path of an existing file")
        return path.read_text()
    return manifests


def parse_manifests(text: str) -> list[Manifest]:
    """The documents of a YAML (or JSON) text, ``kind: List`` expanded; empty documents skipped.

    Raises ManifestError with the line of a syntax error, or naming the document that is not
    an object or lacks ``apiVersion``, ``kind`` or ``metadata.name``."""
    loader = yaml.SafeLoader(text)
    found: list[Manifest] = []
    try:
        document = 0
        while loader.check_node():
            node = loader.get_node()
            document += 1
            obj = loader.construct_document(node)
            found.extend(_documents(obj, document, node.start_mark.line + 1))
    except yaml.MarkedYAMLError as err:
        raise _syntax_error(err) from None
    finally:
        loader.dispose()
    if not found:
        raise ManifestError(
            "the manifest has no objects", "write at least one document with apiVersion and kind"
        )
    return found


def _syntax_error(err: yaml.MarkedYAMLError) -> ManifestError:
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark else None
    where = f" on line {line}, column {mark.column + 1}" if mark else ""
    problem = " ".join(filter(None, [err.context, err.problem]))
    return ManifestError(
        f"YAML syntax error{where}: {problem}",
        "check the indentation (spaces, not tabs) and that every `key: value` has a space after the colon",
        line=line,
    )


def _documents(obj: Any, document: int, line: int) -> list[Manifest]:
    if obj is None:
        return []
    if not isinstance(obj, dict):
        raise ManifestError(
            f"document {document} (line {line}) is not an object but {type(obj).__name__}: {str(obj)[:60]!r}",
            "each document is a mapping with apiVersion, kind and metadata; separate documents with ---",
            line=line,
        )
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        return [m for item in obj["items"] for m in _documents(item, document, line)]
    manifest = Manifest(obj, document, line)
    missing = [f for f in ("apiVersion", "kind") if not obj.get(f)]
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        missing.append("metadata.name")
    if missing:
        raise ManifestError(
            f"{manifest.kind or 'the object'} in {manifest.where} has no {', '.join(missing)}",
            "every object needs apiVersion, kind and metadata.name, "
            "e.g. apiVersion: apps/v1, kind: Deployment",
            line=line,
        )
    return [manifest]


def action_of(before: str | None, after: str) -> str:
    """What kubectl prints for an apply: from the resourceVersion before (None: absent) and after."""
    if before is None:
        return "created"
    return "unchanged" if before == after else "configured"


def invalid_message(status: dict[str, Any], manifest: Manifest) -> ManifestError:
    """A ManifestError from the API server's failure Status for ``manifest``."""
    details = status.get("details") or {}
    causes = [c for c in details.get("causes") or [] if c.get("message")]
    reason = status.get("reason", "")
    if causes and reason == "Invalid":
        lines = [f"  {c['field']}: {c['message']}" if c.get("field") else f"  {c['message']}" for c in causes]
        return ManifestError(
            f'{manifest.kind} "{manifest.name}" is invalid ({manifest.where}):\n' + "\n".join(lines),
            "fix the fields named above; `kubectl explain " + manifest.kind.lower() + ".spec` describes them",
            line=manifest.line,
        )
    message = status.get("message") or str(status)
    hint = "the API server's message above says what it could not accept"
    if "unknown field" in message:
        hint = "a field name is misspelt or at the wrong indentation level"
    elif reason == "NotFound" and "namespaces" in message:
        hint = "create the namespace first: lab.use(NAME) creates it, or apply a Namespace object"
    return ManifestError(
        f'{manifest.kind} "{manifest.name}" ({manifest.where}): {message}', hint, line=manifest.line
    )


def clean(obj: dict[str, Any] | None) -> dict[str, Any]:
    """An object without the fields the server keeps for itself (for diffs)."""
    if not obj:
        return {}
    out = copy.deepcopy(obj)
    meta = out.get("metadata", {})
    for key in NOISY_METADATA:
        meta.pop(key, None)
    out.pop("status", None)
    return out


# -- where kinds are served --------------------------------------------------------------------


def resource_for(api: Api, manifest: Manifest) -> Resource:
    """Where the manifest's kind is served; ManifestError with a hint when nowhere."""
    served = api.resources(manifest.api_version)
    if served is None:
        raise ManifestError(
            f'{manifest.where}: this cluster does not serve apiVersion "{manifest.api_version}"',
            "Deployments are apps/v1; Pods, Services and ConfigMaps are v1; "
            "`kubectl api-versions` lists what this cluster serves",
            line=manifest.line,
        )
    if manifest.kind in served:
        return served[manifest.kind]
    close = difflib.get_close_matches(manifest.kind, list(served), n=1, cutoff=0.6)
    guess = f'did you mean "{close[0]}"? ' if close else ""
    raise ManifestError(
        f'{manifest.where}: unknown kind "{manifest.kind}" in {manifest.api_version}',
        f"{guess}{manifest.api_version} serves: {', '.join(sorted(served))}",
        line=manifest.line,
    )


# -- apply, delete, diff ------------------------------------------------------------------------


def _namespace(resource: Resource, manifest: Manifest, default: str) -> str | None:
    if not resource.namespaced:
        return None
    return str(manifest.obj.get("metadata", {}).get("namespace") or default)


def apply_one(api: Api, manifest: Manifest, namespace: str) -> tuple[Applied, dict[str, Any]]:
    """Server-side apply of one object: what kubectl would print, and the object as stored."""
    resource = resource_for(api, manifest)
    ns = _namespace(resource, manifest, namespace)
    body = copy.deepcopy(manifest.obj)
    if ns:
        body["metadata"]["namespace"] = ns
    path = resource.path(ns, manifest.name)
    status, current = api.request("GET", path)
    before = current["metadata"].get("resourceVersion") if status == 200 else None
    status, stored = api.request(
        "PATCH", path, body, query=APPLY_QUERY, content_type="application/apply-patch+yaml"
    )
    if status >= 400 or not isinstance(stored, dict):
        raise invalid_message(stored if isinstance(stored, dict) else {"message": f"HTTP {status}"}, manifest)
    action = action_of(before, stored["metadata"].get("resourceVersion", ""))
    return Applied(manifest.kind, manifest.name, ns, action, group=resource.group), stored


def apply_all(api: Api, manifests: list[Manifest], namespace: str) -> list[tuple[Applied, dict[str, Any]]]:
    """Apply every manifest in order (all kinds are checked before anything is sent)."""
    for manifest in manifests:
        resource_for(api, manifest)
    return [apply_one(api, m, namespace) for m in manifests]


def delete_all(
    api: Api, manifests: list[Manifest], namespace: str, *, wait: bool = True, timeout: float = 60.0
) -> list[Applied]:
    """Delete every manifest's object (background propagation, as kubectl); with ``wait``, until gone."""
    done: list[tuple[Applied, str]] = []
    for manifest in manifests:
        resource = resource_for(api, manifest)
        ns = _namespace(resource, manifest, namespace)
        path = resource.path(ns, manifest.name)
        status, body = api.request("DELETE", path, query={"propagationPolicy": "Background"})
        if status >= 400 and status != 404:
            raise invalid_message(body if isinstance(body, dict) else {"message": f"HTTP {status}"}, manifest)
        action = "not found" if status == 404 else "deleted"
        done.append((Applied(manifest.kind, manifest.name, ns, action, group=resource.group), path))
    deadline = time.monotonic() + timeout
    for applied, path in done:
        if wait and applied.action == "deleted":
            poll_until(
                lambda path=path: api.request("GET", path)[0] == 404,
                deadline=deadline,
                on_timeout=lambda applied=applied: ClusterError(
                    f"{applied.ref} was not gone within {timeout:.0f} s", "it may have finalizers"
                ),
            )
    return [applied for applied, _ in done]


def diff_all(api: Api, manifests: list[Manifest], namespace: str) -> str:
    """A unified diff between the live objects and what applying would make (a dry run)."""
    chunks: list[str] = []
    for manifest in manifests:
        resource = resource_for(api, manifest)
        ns = _namespace(resource, manifest, namespace)
        body = copy.deepcopy(manifest.obj)
        if ns:
            body["metadata"]["namespace"] = ns
        path = resource.path(ns, manifest.name)
        status, live = api.request("GET", path)
        _, merged = api.request(
            "PATCH",
            path,
            body,
            query={**APPLY_QUERY, "dryRun": "All"},
            content_type="application/apply-patch+yaml",
        )
        if not isinstance(merged, dict) or merged.get("kind") == "Status":
            raise invalid_message(merged if isinstance(merged, dict) else {}, manifest)
        group = resource.group + "." if resource.group else ""
        ref = f"{group}{resource.version}.{manifest.kind}.{ns or ''}.{manifest.name}"
        before = (
            yaml.safe_dump(clean(live if status == 200 else None), sort_keys=True) if status == 200 else ""
        )
        after = yaml.safe_dump(clean(merged), sort_keys=True)
        chunks.extend(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                f"live/{ref}",
                f"merged/{ref}",
            )
        )
    return "".join(chunks)
