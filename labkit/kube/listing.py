"""What is in the cluster, read into the plain models of :mod:`labkit.kube.models`.

Pods and nodes come from the API server's Table responses, with the objects included (what
``kubectl get`` prints, so STATUS and ROLES read as kubectl shows them, on any cluster);
services and events are built from the objects.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from labkit.errors import ClusterError
from labkit.kube.http import Api
from labkit.kube.models import (
    EventInfo,
    Events,
    NodeInfo,
    Nodes,
    PodInfo,
    Pods,
    ServiceInfo,
    Services,
    sorted_by_name,
)
from labkit.shared.contract import ISOLATION_ANNOTATION, POWER_ANNOTATION
from labkit.shared.timeutil import human_duration, parse_rfc3339

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"
FINISHED = {"Succeeded", "Failed"}


def get(api: Api, path: str, *, accept: str = "application/json", query: dict[str, str] | None = None) -> Any:
    """GET a JSON document; ClusterError with the server's message unless it is a 200."""
    status, body = api.request("GET", path, accept=accept, query=query)
    if status != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else f"HTTP {status}"
        raise ClusterError(f"cannot list {path}: {message}")
    return body


def _table(api: Api, path: str, query: dict[str, str] | None = None) -> list[tuple[dict[str, Any], dict]]:
    """The rows of a Table response: (cells keyed by lower-case column name, the object)."""
    table = get(api, path, accept=TABLE, query={"includeObject": "Object", **(query or {})})
    names = [c["name"].lower() for c in table.get("columnDefinitions", [])]
    return [
        (dict(zip(names, row.get("cells", []), strict=False)), row.get("object") or {})
        for row in table.get("rows", [])
    ]


def _restarts(cell: Any) -> int:
    """``2 (5s ago)`` → 2."""
    text = str(cell).split(" ", 1)[0]
    return int(text) if text.isdigit() else 0


def _none(cell: Any) -> str | None:
    return None if cell in (None, "", "<none>") else str(cell)


def owner_of(meta: dict[str, Any]) -> str | None:
    """``Kind/name`` of what manages a pod; a ReplicaSet named ``<deployment>-<pod-template-hash>``
    stands for its Deployment, so the replicas of one Deployment share an owner."""
    refs = meta.get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if ref is None:
        return None
    kind, name = ref.get("kind", ""), ref.get("name", "")
    suffix = "-" + ((meta.get("labels") or {}).get("pod-template-hash") or "")
    if kind == "ReplicaSet" and len(suffix) > 1 and name.endswith(suffix):
        return f"Deployment/{name[: -len(suffix)]}"
    return f"{kind}/{name}"


def pods(api: Api, namespace: str | None, selector: str | None = None) -> Pods:
    """The pods of ``namespace`` (None: every namespace), optionally those matching ``selector``."""
    path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
    found = []
    for cells, obj in _table(api, path, {"labelSelector": selector} if selector else None):
        meta = obj.get("metadata") or {}
        found.append(
            PodInfo(
                name=str(cells.get("name") or meta.get("name")),
                namespace=str(meta.get("namespace") or namespace or ""),
                status=str(cells.get("status") or ""),
                phase=str((obj.get("status") or {}).get("phase") or "Pending"),
                ready=str(cells.get("ready") or "0/0"),
                restarts=_restarts(cells.get("restarts", 0)),
                node=_none(cells.get("node")),
                ip=_none(cells.get("ip")),
                age=str(cells.get("age") or ""),
                owner=owner_of(meta),
                labels=dict(meta.get("labels") or {}),
                deleting=bool(meta.get("deletionTimestamp")),
            )
        )
    return Pods(sorted_by_name(found))


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _capacity(node: dict[str, Any]) -> int:
    value = str(((node.get("status") or {}).get("capacity") or {}).get("pods") or "0")
    return int(value) if value.isdigit() else 0


def nodes(api: Api, namespace: str | None, pods: Pods | None = None) -> Nodes:
    """The nodes, each with how many unfinished pods of ``namespace`` (None: all) it runs;
    given ``pods`` (just read), they are counted instead of read again."""
    count: dict[str, int] = {}
    if pods is not None:
        for info in pods:
            if info.node and info.phase not in FINISHED:
                count[info.node] = count.get(info.node, 0) + 1
    else:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        for pod in get(api, path).get("items", []):
            node = (pod.get("spec") or {}).get("nodeName")
            if node and (pod.get("status") or {}).get("phase") not in FINISHED:
                count[node] = count.get(node, 0) + 1
    found = []
    for cells, obj in _table(api, "/api/v1/nodes"):
        meta = obj.get("metadata") or {}
        name = str(cells.get("name") or meta.get("name"))
        found.append(
            NodeInfo(
                name=name,
                status=str(cells.get("status") or ""),
                roles=str(cells.get("roles") or "<none>"),
                pods=count.get(name, 0),
                capacity=_capacity(obj),
                ready=_ready(obj),
                cordoned=bool((obj.get("spec") or {}).get("unschedulable")),
                stopped=(meta.get("annotations") or {}).get(POWER_ANNOTATION) == "off",
                age=str(cells.get("age") or ""),
            )
        )
    return Nodes(sorted_by_name(found))


def _ports(svc: dict[str, Any]) -> str:
    """``80:30080/TCP,443/TCP`` as kubectl's PORT(S) column."""
    parts = []
    for p in svc.get("spec", {}).get("ports") or []:
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        parts.append(f"{p.get('port')}{node_port}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def services(api: Api, namespace: str) -> Services:
    """The namespace's Services, each with the number of ready addresses behind it."""
    svcs = get(api, f"/api/v1/namespaces/{namespace}/services").get("items", [])
    endpoints = {
        e["metadata"]["name"]: sum(len(s.get("addresses") or []) for s in e.get("subsets") or [])
        for e in get(api, f"/api/v1/namespaces/{namespace}/endpoints").get("items", [])
    }
    return Services(
        sorted_by_name(
            ServiceInfo(
                name=s["metadata"]["name"],
                namespace=namespace,
                type=s.get("spec", {}).get("type", "ClusterIP"),
                cluster_ip=s.get("spec", {}).get("clusterIP"),
                ports=_ports(s),
                endpoints=endpoints.get(s["metadata"]["name"], 0),
                selector=dict(s.get("spec", {}).get("selector") or {}),
            )
            for s in svcs
        )
    )


def _last_seen(event: dict[str, Any], now: dt.datetime) -> tuple[str, str]:
    """(sortable timestamp, kubectl-style age) of an event."""
    stamp = (
        event.get("lastTimestamp")
        or (event.get("series") or {}).get("lastObservedTime")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or event["metadata"].get("creationTimestamp")
    )
    if not stamp:
        return "", "<unknown>"
    seconds = (now - parse_rfc3339(stamp)).total_seconds()
    return parse_rfc3339(stamp).isoformat(), human_duration(max(seconds, 0.0))


def events(api: Api, namespace: str) -> Events:
    """The namespace's events, oldest first."""
    now = dt.datetime.now(dt.timezone.utc)
    found = []
    for e in get(api, f"/api/v1/namespaces/{namespace}/events").get("items", []):
        stamp, age = _last_seen(e, now)
        involved = e.get("involvedObject", {})
        found.append(
            EventInfo(
                last_seen=age,
                type=e.get("type"),
                reason=e.get("reason"),
                object=f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
                message=e.get("message"),
                timestamp=stamp,
            )
        )
    return Events(sorted(found, key=lambda e: e.timestamp))


def runtime(api: Api) -> tuple[list[str], str]:
    """The node names, and how the nodes run containers: the embedded cluster's isolation note,
    else the runtime the first node reports (``containerd://1.7.x`` on kind and most clusters)."""
    items = get(api, "/api/v1/nodes").get("items", [])
    names = [n["metadata"]["name"] for n in items]
    for node in items:
        note = (node["metadata"].get("annotations") or {}).get(ISOLATION_ANNOTATION)
        if note:
            return names, str(note)
    for node in items:
        version = ((node.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion")
        if version:
            return names, str(version)
    return names, ""
