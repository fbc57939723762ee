"""What the ReplicaSet and Deployment controllers share.

Pod readiness and availability (``podutil``), controller references and adoption
(``ControllerRefManager``), the pod-template hash and the deployment arithmetic of
``pkg/controller/deployment/util``: fenceposts, revisions, replica annotations, conditions.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from labkit.embedded.apiserver.label_parser import parse_label_selector
from labkit.embedded.apiserver.metav1_selector import selector_to_string
from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.context import ClusterContext
from labkit.embedded.resources import ResourceType
from labkit.shared.timeutil import parse_rfc3339, rfc3339

Obj = dict[str, Any]
Clock = Callable[[], datetime]

MANAGER = "kube-controller-manager"
HASH_LABEL = "pod-template-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations a ReplicaSet does not copy (``annotationsToSkip``).
SKIPPED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)
MAX_REVISION_HISTORY_CHARS = 2000  # the controller manager's default


# -- pods ------------------------------------------------------------------------------------


def is_active(pod: Obj) -> bool:
    """Not terminating and not finished (``controller.IsPodActive``)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    """The pod's Ready condition if it is True."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond if cond.get("status") == "True" else None
    return None


def is_ready(pod: Obj) -> bool:
    """The Ready condition is True."""
    return ready_condition(pod) is not None


def available_in(pod: Obj, min_ready_seconds: int, now: datetime) -> float | None:
    """Seconds until a Ready pod counts as available (0 if it is already), None if it never will
    as it is. As ``IsPodAvailable``: Ready for longer than ``minReadySeconds``."""
    cond = ready_condition(pod)
    if cond is None:
        return None
    if min_ready_seconds == 0:
        return 0.0
    if not cond.get("lastTransitionTime"):
        return None
    due = parse_rfc3339(cond["lastTransitionTime"]) + timedelta(seconds=min_ready_seconds)
    return 0.0 if due < now else max((due - now).total_seconds(), 0.001)


def max_restarts(pod: Obj) -> int:
    """The highest restart count among the pod's containers."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


# -- owners and selectors ------------------------------------------------------------------


def controller_ref(owner: Obj) -> Obj:
    """The ownerReference a controller puts on what it creates (``NewControllerRef``)."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference marked ``controller: true``, if any."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def selector_matcher(selector: Mapping[str, Any] | None) -> Callable[[Mapping[str, str] | None], bool]:
    """A predicate for a ``metav1.LabelSelector``, parsed once (None matches nothing)."""
    if selector is None:
        return lambda labels: False
    matches = parse_label_selector(selector_to_string(selector))
    return lambda labels: matches(labels or {})


def claim(ctx: ClusterContext, rt: ResourceType, owner: Obj, candidates: Iterable[Obj]) -> list[Obj]:
    """The objects ``owner`` controls, after adopting matching orphans and releasing controlled
    objects whose labels no longer match its selector (``ControllerRefManager.ClaimObject``)."""
    meta = owner["metadata"]
    matches = selector_matcher((owner.get("spec") or {}).get("selector"))
    deleting = bool(meta.get("deletionTimestamp"))
    owned: list[Obj] = []
    for obj in candidates:
        ref = controller_of(obj)
        labels = obj["metadata"].get("labels")
        if ref is not None:
            if ref.get("uid") != meta["uid"]:
                continue
            if deleting or matches(labels):
                owned.append(obj)
            else:
                _release(ctx, rt, obj, meta["uid"])
        elif not deleting and not obj["metadata"].get("deletionTimestamp") and matches(labels):
            adopted = _adopt(ctx, rt, obj, owner)
            if adopted is not None:
                owned.append(adopted)
    return owned


def _adopt(ctx: ClusterContext, rt: ResourceType, obj: Obj, owner: Obj) -> Obj | None:
    def add(draft: Obj) -> None:
        if controller_of(draft) is not None:
            raise ApiError(409, "already controlled")
        refs = draft["metadata"].setdefault("ownerReferences", [])
        refs.append(controller_ref(owner))

    return _patch(ctx, rt, obj, add)


def _release(ctx: ClusterContext, rt: ResourceType, obj: Obj, uid: str) -> None:
    def drop(draft: Obj) -> None:
        refs = [r for r in draft["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if refs:
            draft["metadata"]["ownerReferences"] = refs
        else:
            draft["metadata"].pop("ownerReferences", None)

    _patch(ctx, rt, obj, drop)


def _patch(ctx: ClusterContext, rt: ResourceType, obj: Obj, change: Callable[[Obj], None]) -> Obj | None:
    meta = obj["metadata"]
    try:
        return ctx.registry.mutate(rt, meta.get("namespace"), meta["name"], change, manager=MANAGER)
    except ApiError as e:
        if e.code in (404, 409):
            return None  # gone, or someone else took it meanwhile: the next pass sees the truth
        raise


def by_creation(objs: Iterable[Obj]) -> list[Obj]:
    """Oldest first, ties by name (``ReplicaSetsByCreationTimestamp``)."""
    return sorted(objs, key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"]))


def stamp(when: datetime) -> str:
    """A timestamp as the API writes it."""
    return rfc3339(when)


# -- the pod-template hash -------------------------------------------------------------------


def fnv32a(data: bytes) -> int:
    """32-bit FNV-1a."""
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each byte mapped onto an alphabet without vowels."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """The ``pod-template-hash`` of a pod template, as ``controller.ComputeHash``: FNV-32a of the
    template (here its canonical JSON, where upstream hashes Go's struct dump) and the collision
    count as 8 little-endian bytes, the decimal sum safe-encoded."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return safe_encode(str(fnv32a(data)))


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Two pod templates are equal but for the ``pod-template-hash`` label."""
    return _without_hash(a) == _without_hash(b)


def _without_hash(template: Obj) -> Obj:
    out = copy.deepcopy(template)
    meta = out.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != HASH_LABEL}
    meta.pop("labels", None)
    if labels:
        meta["labels"] = labels
    return out


# -- deployment arithmetic -------------------------------------------------------------------


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """``GetScaledValueFromIntOrPercent``: an int, or a percentage of ``total`` rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        exact = int(text[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def fenceposts(deployment: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for a RollingUpdate deployment, as ``ResolveFenceposts``; (0, 0)
    for Recreate. Unavailability never exceeds the replicas."""
    spec = deployment["spec"]
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    desired = replicas_of(deployment)
    surge = scaled_value(rolling.get("maxSurge"), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    if desired == 0:
        unavailable = 0
    return surge, min(unavailable, desired)


def replicas_of(obj: Obj) -> int:
    """``spec.replicas`` (1 when absent, as defaulted)."""
    value = obj["spec"].get("replicas")
    return 1 if value is None else int(value)


def status_count(obj: Obj | None, field: str) -> int:
    """An integer status field (0 when absent)."""
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def revision(obj: Obj) -> int:
    """The ``deployment.kubernetes.io/revision`` annotation (0 when absent or not a number)."""
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def annotation_int(obj: Obj, key: str) -> int | None:
    """An integer annotation, or None."""
    try:
        return int((obj["metadata"].get("annotations") or {})[key])
    except (KeyError, ValueError):
        return None


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    """Record the deployment's desired and maximum sizes on a ReplicaSet; True if they changed."""
    annotations = rs["metadata"].setdefault("annotations", {})
    wanted = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(maximum)}
    changed = any(annotations.get(k) != v for k, v in wanted.items())
    annotations.update(wanted)
    return changed


def set_new_rs_annotations(deployment: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """``SetNewReplicaSetAnnotations``: copy the deployment's annotations, raise the revision
    (keeping the old one in the revision history), and for a new set record the sizes."""
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in (deployment["metadata"].get("annotations") or {}).items():
        if key not in SKIPPED_ANNOTATIONS and annotations.get(key) != value:
            annotations[key] = value
            changed = True
    old = annotations.get(REVISION)
    old_number = revision(rs)
    if old_number < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old is not None:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h] + [old]
            while len(",".join(history)) > MAX_REVISION_HISTORY_CHARS:
                history.pop(0)
            annotations[REVISION_HISTORY] = ",".join(history)
    if not exists:
        surge, _ = fenceposts(deployment)
        desired = replicas_of(deployment)
        changed = set_replicas_annotations(rs, desired, desired + surge) or changed
    return changed


# -- conditions ------------------------------------------------------------------------------


def condition(kind: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    """A Deployment condition stamped ``now``."""
    when = stamp(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": when,
        "lastTransitionTime": when,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Obj | None, kind: str) -> Obj | None:
    """The condition of a type, or None."""
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def set_condition(status: Obj, new: Obj) -> None:
    """``SetDeploymentCondition``: keep a condition with the same status and reason as it is;
    keep the transition time when only the reason changes; the new one goes last."""
    current = get_condition(status, new["type"])
    if current is not None and current["status"] == new["status"] and current["reason"] == new["reason"]:
        return
    if current is not None and current["status"] == new["status"]:
        new = {**new, "lastTransitionTime": current["lastTransitionTime"]}
    remove_condition(status, new["type"])
    status.setdefault("conditions", []).append(new)


def remove_condition(status: Obj, kind: str) -> None:
    """Drop the condition of a type."""
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)
