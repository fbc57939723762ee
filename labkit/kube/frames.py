"""What is in the cluster, as pandas DataFrames with the columns a learner reads.

Pods and nodes come from the API server's Table responses (what ``kubectl get`` prints, so
STATUS and ROLES read as kubectl shows them, on any cluster); services and events are built
from the objects.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from labkit.errors import ClusterError
from labkit.kube.apply import Api
from labkit.shared.timeutil import human_duration, parse_rfc3339

if TYPE_CHECKING:
    import pandas as pd

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"
POD_COLUMNS = ["name", "ready", "status", "restarts", "node", "ip", "age"]
NODE_COLUMNS = ["name", "status", "roles", "pods"]
SERVICE_COLUMNS = ["name", "type", "cluster_ip", "ports", "endpoints"]
EVENT_COLUMNS = ["last_seen", "type", "reason", "object", "message"]
FINISHED = {"Succeeded", "Failed"}


def _get(
    api: Api, path: str, *, accept: str = "application/json", query: dict[str, str] | None = None
) -> Any:
    status, body = api.request("GET", path, accept=accept, query=query)
    if status != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else f"HTTP {status}"
        raise ClusterError(f"cannot list {path}: {message}")
    return body


def _table(api: Api, path: str) -> list[dict[str, Any]]:
    """The rows of a Table response as dicts keyed by lower-case column name."""
    table = _get(api, path, accept=TABLE)
    names = [c["name"].lower() for c in table.get("columnDefinitions", [])]
    return [dict(zip(names, row.get("cells", []), strict=False)) for row in table.get("rows", [])]


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def _restarts(cell: Any) -> int:
    """``2 (5s ago)`` → 2."""
    text = str(cell).split(" ", 1)[0]
    return int(text) if text.isdigit() else 0


def pods(api: Api, namespace: str) -> pd.DataFrame:
    """The namespace's pods: name, ready ("1/1"), status (as kubectl), restarts, node, ip, age."""
    rows = [
        {
            "name": r.get("name"),
            "ready": r.get("ready"),
            "status": r.get("status"),
            "restarts": _restarts(r.get("restarts", 0)),
            "node": None if r.get("node") in (None, "<none>") else r["node"],
            "ip": None if r.get("ip") in (None, "<none>") else r["ip"],
            "age": r.get("age"),
        }
        for r in _table(api, f"/api/v1/namespaces/{namespace}/pods")
    ]
    return _frame(sorted(rows, key=lambda r: str(r["name"])), POD_COLUMNS)


def nodes(api: Api, namespace: str) -> pd.DataFrame:
    """The nodes: name, status (Ready, NotReady, SchedulingDisabled as kubectl), roles, and how
    many of the namespace's pods each one runs."""
    listed = _get(api, f"/api/v1/namespaces/{namespace}/pods").get("items", [])
    count: dict[str, int] = {}
    for pod in listed:
        node = pod.get("spec", {}).get("nodeName")
        if node and pod.get("status", {}).get("phase") not in FINISHED:
            count[node] = count.get(node, 0) + 1
    rows = [
        {
            "name": r.get("name"),
            "status": r.get("status"),
            "roles": r.get("roles"),
            "pods": count.get(r.get("name"), 0),
        }
        for r in _table(api, "/api/v1/nodes")
    ]
    return _frame(sorted(rows, key=lambda r: str(r["name"])), NODE_COLUMNS)


def _ports(svc: dict[str, Any]) -> str:
    """``80:30080/TCP,443/TCP`` as kubectl's PORT(S) column."""
    parts = []
    for p in svc.get("spec", {}).get("ports") or []:
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        parts.append(f"{p.get('port')}{node_port}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def services(api: Api, namespace: str) -> pd.DataFrame:
    """The namespace's Services: name, type, cluster_ip, ports, and endpoints (the number of
    ready addresses behind it)."""
    svcs = _get(api, f"/api/v1/namespaces/{namespace}/services").get("items", [])
    endpoints = {
        e["metadata"]["name"]: sum(len(s.get("addresses") or []) for s in e.get("subsets") or [])
        for e in _get(api, f"/api/v1/namespaces/{namespace}/endpoints").get("items", [])
    }
    rows = [
        {
            "name": s["metadata"]["name"],
            "type": s.get("spec", {}).get("type", "ClusterIP"),
            "cluster_ip": s.get("spec", {}).get("clusterIP"),
            "ports": _ports(s),
            "endpoints": endpoints.get(s["metadata"]["name"], 0),
        }
        for s in svcs
    ]
    return _frame(sorted(rows, key=lambda r: str(r["name"])), SERVICE_COLUMNS)


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


def events(api: Api, namespace: str) -> pd.DataFrame:
    """The namespace's events, oldest first: last_seen, type, reason, object ("pod/web-1"), message."""
    now = dt.datetime.now(dt.timezone.utc)
    dated = []
    for e in _get(api, f"/api/v1/namespaces/{namespace}/events").get("items", []):
        stamp, age = _last_seen(e, now)
        involved = e.get("involvedObject", {})
        dated.append(
            (
                stamp,
                {
                    "last_seen": age,
                    "type": e.get("type"),
                    "reason": e.get("reason"),
                    "object": f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
                    "message": e.get("message"),
                },
            )
        )
    dated.sort(key=lambda pair: pair[0])
    return _frame([row for _, row in dated], EVENT_COLUMNS)
