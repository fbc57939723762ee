"""Waiting for objects to become ready, with progress lines as ``kubectl rollout status`` prints.

A wait that times out raises :class:`~labkit.errors.NotReadyError` naming each unready pod with
why it is not ready (its container's waiting reason and message, or why it is not scheduled)
and the latest Warning event about it, so a learner sees the cause without another command.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from typing import Any

from labkit.errors import ClusterError, LabWarning, NotReadyError, UsageError
from labkit.kube.apply import Applied
from labkit.kube.http import Api
from labkit.kube.poll import poll_until

POLL = 0.05  # seconds between looks: loopback requests are cheap, and learners wait for these
ALIASES = {
    "deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
    "pod": "Pod", "pods": "Pod", "po": "Pod",
    "service": "Service", "services": "Service", "svc": "Service",
    "replicaset": "ReplicaSet", "replicasets": "ReplicaSet", "rs": "ReplicaSet",
}  # fmt: skip
WAITABLE = {"Deployment", "Pod", "Service", "ReplicaSet"}
PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "ReplicaSet": "/apis/apps/v1/namespaces/{ns}/replicasets/{name}",
    "Pod": "/api/v1/namespaces/{ns}/pods/{name}",
    "Service": "/api/v1/namespaces/{ns}/endpoints/{name}",
}
IMAGE_REASONS = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"}

Progress = Callable[[str], None]


def parse_target(what: str) -> tuple[str, str]:
    """``"deployment/web"`` → ("Deployment", "web"); UsageError for anything else."""
    kind, slash, name = what.partition("/")
    if not slash or not name or kind.lower().split(".")[0] not in ALIASES:
        raise UsageError(
            f"cannot wait for {what!r}",
            "name it as KIND/NAME with a kind of deployment, pod, service or replicaset, e.g. deployment/web",
        )
    return ALIASES[kind.lower().split(".")[0]], name


# -- readiness, from one object ---------------------------------------------------------------


def rollout_status(dep: dict[str, Any]) -> tuple[bool, str]:
    """(done, message) of a Deployment, worded as ``kubectl rollout status``."""
    name = dep["metadata"]["name"]
    spec, status = dep.get("spec", {}), dep.get("status", {})
    if dep["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return False, "Waiting for deployment spec update to be observed..."
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, f'deployment "{name}" exceeded its progress deadline'
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{updated} out of {wanted} new replicas have been updated..."
        )
    if total > updated:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{total - updated} old replicas are pending termination..."
        )
    if available < updated:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{available} of {updated} updated replicas are available..."
        )
    return True, f'deployment "{name}" successfully rolled out'


def pod_ready(pod: dict[str, Any]) -> bool:
    """The pod's Ready condition is True."""
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_problem(pod: dict[str, Any]) -> tuple[str, str]:
    """(reason, detail) of why a pod is not ready: a container's waiting or terminated state,
    an unscheduled pod's message, or a failing readiness."""
    status = pod.get("status", {})
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        for key in ("waiting", "terminated"):
            if state.get(key, {}).get("reason") not in (None, "Completed"):
                return state[key]["reason"], state[key].get("message", "")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return cond.get("reason") or "Unschedulable", cond.get("message", "")
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating", ""
    if status.get("phase") == "Running":
        return "NotReady", "its containers run, but the readiness probe does not pass yet"
    return status.get("phase") or "Pending", ""


def _ready(kind: str, obj: dict[str, Any]) -> tuple[bool, str]:
    name = obj.get("metadata", {}).get("name", "")
    if kind == "Deployment":
        return rollout_status(obj)
    if kind == "ReplicaSet":
        wanted, ready = obj.get("spec", {}).get("replicas", 1), obj.get("status", {}).get("readyReplicas", 0)
        return ready >= wanted, f'replicaset "{name}": {ready} of {wanted} pods ready'
    if kind == "Pod":
        ok = pod_ready(obj)
        return (
            ok,
            f'pod "{name}" is ready'
            if ok
            else f'Waiting for pod "{name}" to be ready: {pod_problem(obj)[0]}',
        )
    ready = sum(len(s.get("addresses") or []) for s in obj.get("subsets") or [])
    return ready > 0, f'service "{name}" has {ready} ready endpoint{"s" if ready != 1 else ""}'


# -- waiting ----------------------------------------------------------------------------------


def wait_ready(
    api: Api,
    kind: str,
    name: str,
    namespace: str,
    *,
    timeout: float,
    progress: Progress | None = None,
    deadline: float | None = None,
) -> str:
    """Wait until ``kind/name`` is ready; returns the last progress message.

    Deployments: the rollout finished; ReplicaSets: all replicas ready; Pods: Ready; Services:
    at least one ready endpoint. Other kinds are ready once they exist."""
    if kind not in WAITABLE:
        return f"{kind.lower()}/{name} needs no waiting"
    path = PATHS[kind].format(ns=namespace, name=name)
    if deadline is None:  # a caller waiting for several objects passes one deadline for all
        deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {"message": "", "obj": None}

    def look() -> str | None:
        status, obj = api.request("GET", path)
        done, message = (
            _ready(kind, obj)
            if status == 200
            else (False, f'Waiting for {kind.lower()} "{name}" to exist...')
        )
        if message != seen["message"] and progress is not None:
            progress(message)
        seen.update(message=message, obj=obj if status == 200 else None)
        if done:
            return message
        phase = (obj or {}).get("status", {}).get("phase") if status == 200 and kind == "Pod" else None
        if phase == "Succeeded":  # it ran to completion: it will never be Ready, nor need to be
            return f'pod "{name}" completed'
        if phase == "Failed":  # it will never be Ready: say why now rather than at the deadline
            raise timeout_error(api, kind, name, namespace, timeout, f'pod "{name}" failed', obj)
        return None

    return poll_until(
        look,
        deadline=deadline,
        interval=POLL,
        on_timeout=lambda: timeout_error(api, kind, name, namespace, timeout, seen["message"], seen["obj"]),
    )


def worth_waiting(kind: str, stored: dict[str, Any], has_load_balancer: bool) -> bool:
    """Whether an applied object is waited for: Services only when they select pods and can work
    here (a LoadBalancer Service without a load balancer never gets its address)."""
    if kind not in WAITABLE:
        return False
    if kind != "Service":
        return True
    spec = stored.get("spec", {})
    return bool(spec.get("selector")) and (has_load_balancer or spec.get("type") != "LoadBalancer")


def pending_load_balancers(stored: list[dict[str, Any]]) -> list[str]:
    """The names of the LoadBalancer Services among applied objects."""
    return [
        obj["metadata"]["name"]
        for obj in stored
        if obj.get("kind") == "Service" and obj.get("spec", {}).get("type") == "LoadBalancer"
    ]


def load_balancer_warning(name: str, target: str) -> str:
    """What to tell a learner who applied a LoadBalancer Service where no load balancer runs."""
    return (
        f"service/{name} is type LoadBalancer: on {target} its EXTERNAL-IP stays <pending>, because "
        f"no load balancer runs there. Reach it with lab.traffic('{name}', via='proxy'), a NodePort, "
        "or `kubectl port-forward` (which pins one pod); on kind, cloud-provider-kind adds load balancers."
    )


def warn_pending_load_balancers(stored: list[dict[str, Any]], target: str) -> None:
    """A LabWarning for each LoadBalancer Service among applied objects (on a target without a
    load balancer), pointing at the caller of the Lab's ``apply``."""
    for name in pending_load_balancers(stored):
        warnings.warn(load_balancer_warning(name, target), LabWarning, stacklevel=4)


def refuse_pending_load_balancer(api: Api, namespace: str, name: str, target: str) -> None:
    """ClusterError when ``service/name`` is a LoadBalancer, which never becomes ready where no
    load balancer runs (waiting for it would only time out)."""
    _, svc = api.request("GET", f"/api/v1/namespaces/{namespace}/services/{name}")
    if pending_load_balancers([svc] if isinstance(svc, dict) else []):
        raise ClusterError(
            f"service/{name} is type LoadBalancer, and on {target} its EXTERNAL-IP "
            "stays <pending>: no load balancer runs there",
            f"use type NodePort, lab.traffic('{name}', via='proxy'), or install cloud-provider-kind",
        )


def wait_applied(
    api: Api,
    done: list[tuple[Applied, dict[str, Any]]],
    namespace: str,
    *,
    timeout: float,
    has_load_balancer: bool,
    progress: Progress | None = None,
) -> list[Applied]:
    """Wait until every applied object worth waiting for is ready, with one deadline for all
    (errors name the total); the results say which were waited for (``ready``)."""
    deadline = time.monotonic() + timeout
    results = []
    for applied, stored in done:
        if worth_waiting(applied.kind, stored, has_load_balancer):
            wait_ready(api, applied.kind, applied.name, applied.namespace or namespace,
                       timeout=timeout, deadline=deadline, progress=progress)  # fmt: skip
            applied = dataclasses.replace(applied, ready=True)
        results.append(applied)
    return results


def _selector(api: Api, kind: str, name: str, namespace: str, obj: dict[str, Any] | None) -> str | None:
    if kind in ("Deployment", "ReplicaSet") and obj:
        labels = obj.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    elif kind == "Service":
        _, svc = api.request("GET", f"/api/v1/namespaces/{namespace}/services/{name}")
        labels = (svc or {}).get("spec", {}).get("selector") or {}
    else:
        return None
    return ",".join(f"{k}={v}" for k, v in labels.items()) or None


def unready_pods(
    api: Api, kind: str, name: str, namespace: str, obj: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The pods a wait depends on that are not ready."""
    if kind == "Pod":
        return [obj] if obj and not pod_ready(obj) else []
    selector = _selector(api, kind, name, namespace, obj)
    if selector is None:
        return []
    _, pods = api.request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector})
    return [p for p in (pods or {}).get("items", []) if not pod_ready(p)]


def latest_warnings(api: Api, namespace: str) -> dict[str, dict[str, Any]]:
    """The latest Warning event about each object of a namespace, by object name."""
    _, events = api.request("GET", f"/api/v1/namespaces/{namespace}/events")
    latest: dict[str, dict[str, Any]] = {}
    for event in (events or {}).get("items", []):
        if event.get("type") != "Warning":
            continue
        obj = event.get("involvedObject", {}).get("name", "")
        if obj not in latest or _when(event) >= _when(latest[obj]):
            latest[obj] = event
    return latest


def _when(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp", "")
    )


def timeout_error(
    api: Api, kind: str, name: str, namespace: str, timeout: float, message: str, obj: dict[str, Any] | None
) -> NotReadyError:
    """The error for a wait that ran out of time: what it waited for and each unready pod's cause."""
    pods = unready_pods(api, kind, name, namespace, obj)
    warnings = latest_warnings(api, namespace) if pods else {}
    lines = [f"{kind.lower()}/{name} was not ready within {timeout:g} s: {message}"]
    reasons: dict[str, str] = {}
    if pods:
        lines.append("pods not ready:")
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        reason, detail = pod_problem(pod)
        reasons[pod_name] = reason
        node = pod.get("spec", {}).get("nodeName")
        lines.append(
            f"  {pod_name}{' on ' + node if node else ''}: {reason}{': ' + detail if detail else ''}"
        )
        warning = warnings.get(pod_name)
        if warning:
            lines.append(f"    last warning: {warning.get('reason', '')}: {warning.get('message', '')}")
    return NotReadyError("\n".join(lines), _hint(set(reasons.values()), kind, name), pods=reasons)


def _hint(reasons: set[str], kind: str, name: str) -> str:
    if reasons & IMAGE_REASONS:
        return (
            "the image is not in the cluster: check the tag, build it with lab.build(...) first "
            "(on kind it is loaded into the nodes; a kubeconfig cluster needs it pushed to a registry), "
            "and avoid :latest, which makes Kubernetes pull"
        )
    if reasons & {"CrashLoopBackOff", "Error", "RunContainerError", "CreateContainerConfigError"}:
        return "the container fails: read its output with lab.logs(POD)"
    if reasons & {"Unschedulable", "Pending"}:
        return "no node can take the pod: look at lab.nodes() and lab.events()"
    if reasons & {"NotReady"}:
        return "the readiness probe fails: check its port and path, and lab.logs(POD)"
    return (
        f"see lab.events() and `kubectl describe {kind.lower()} {name}`; raise the timeout with timeout=..."
    )
