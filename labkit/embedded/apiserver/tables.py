"""``meta.k8s.io/v1`` Table responses, the form ``kubectl get`` asks for.

Columns and cell values follow kubernetes ``pkg/printers/internalversion/printers.go``. Like
kube-apiserver, every row carries the ``-o wide`` cells too (columns with ``priority: 1``); kubectl
hides them unless asked. Cell types follow upstream exactly, including its quirks: a few columns
declared ``string`` hold integers (a Deployment's Up-to-date and Available, the Data of ConfigMaps
and Secrets, an Event's Count), which kubectl prints the same either way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime
from typing import Any

from labkit.embedded import timeutil
from labkit.embedded.apiserver.selectors import SelectorError, selector_to_string
from labkit.embedded.apiserver.status import bad_request
from labkit.embedded.resources import ResourceType

Cells = list[Any]
Printer = Callable[[dict[str, Any], datetime], Cells]

INCLUDE_OBJECT = ("Metadata", "Object", "None")
_NONE = "<none>"


def _column(name: str, description: str, kind: str = "string", *, wide: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "format": "name" if name == "Name" else "",
        "description": description,
        "priority": 1 if wide else 0,
    }


_NAME = _column("Name", "Name of the object, unique within its namespace.")
_AGE = _column("Age", "Time since the object was created (metadata.creationTimestamp).")
_TEMPLATE_COLUMNS = [
    _column("Containers", "Names of each container in the template.", wide=True),
    _column("Images", "Images referenced by each container in the template.", wide=True),
    _column("Selector", "Label selector for the pods this object manages.", wide=True),
]


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _name_age(obj: dict[str, Any], now: datetime) -> tuple[str, str]:
    meta = _meta(obj)
    return meta.get("name", ""), timeutil.age(meta.get("creationTimestamp"), now)


def _labels_text(labels: dict[str, str] | None) -> str:
    """A label map as ``a=1,b=2`` (sorted), ``<none>`` when empty: upstream ``labels.FormatLabels``."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or _NONE


def _template_cells(obj: dict[str, Any]) -> tuple[str, str]:
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _selector_text(selector: dict[str, Any] | None, empty: str) -> str:
    try:
        return selector_to_string(selector) or empty
    except SelectorError:
        return "<invalid>"


def _list_with_more(items: list[str], limit: int = 3, empty: str = "<unset>") -> str:
    """The first ``limit`` items, then `` + N more...``, as upstream lists endpoints."""
    text = ",".join(items[:limit])
    if len(items) > limit:
        return f"{text} + {len(items) - limit} more..."
    return text or empty


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return timeutil.parse_rfc3339(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Pods: printPod.

_POD_COLUMNS = [
    _NAME,
    _column("Ready", "Ready containers out of all containers in the pod."),
    _column("Status", "The aggregate status of the containers in this pod."),
    _column("Restarts", "Container restarts, and how long ago the latest one was."),
    _AGE,
    _column("IP", "The pod's IP address.", wide=True),
    _column("Node", "The node the pod is bound to.", wide=True),
    _column("Nominated Node", "The node the scheduler nominated for preemption.", wide=True),
    _column("Readiness Gates", "Readiness gates whose conditions are True.", wide=True),
]


def _condition_true(conditions: list[dict[str, Any]], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _terminated_reason(terminated: dict[str, Any]) -> str:
    if terminated.get("reason"):
        return terminated["reason"]
    if terminated.get("signal"):
        return f"Signal:{terminated['signal']}"
    return f"ExitCode:{terminated.get('exitCode', 0)}"


def _finished(status: dict[str, Any]) -> datetime | None:
    return _time(((status.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b > a) else a


class _PodSummary:
    """Readiness, status text and restarts of a pod, computed in upstream printPod's order."""

    def __init__(self, pod: dict[str, Any]) -> None:
        self.spec = pod.get("spec") or {}
        self.status = pod.get("status") or {}
        self.conditions = self.status.get("conditions") or []
        self.phase = self.status.get("phase") or ""
        self.reason = self.status.get("reason") or self.phase
        if any(
            c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in self.conditions
        ):
            self.reason = "SchedulingGated"
        self.sidecars = {
            c.get("name") for c in self.spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        }
        self.total = len(self.spec.get("containers") or []) + len(self.sidecars)
        self.ready = 0
        self.restarts = 0
        self.last_restart: datetime | None = None
        initializing, sidecar_restarts, sidecar_last = self._init_containers()
        if not initializing or _condition_true(self.conditions, "Initialized"):
            # Once initialized, only restartable (sidecar) init containers add to the restarts.
            self.restarts, self.last_restart = sidecar_restarts, sidecar_last
            self._containers()
        if _meta(pod).get("deletionTimestamp"):
            if self.status.get("reason") == "NodeLost":
                self.reason = "Unknown"
            elif self.phase not in ("Succeeded", "Failed"):
                self.reason = "Terminating"

    def _init_containers(self) -> tuple[bool, int, datetime | None]:
        """Walk init container statuses.

        Returns whether initialization is still running (or failed), and the restarts and latest
        restart time of the sidecar init containers alone.
        """
        sidecar_restarts, sidecar_last = 0, None
        statuses = self.status.get("initContainerStatuses") or []
        initializing = False
        for i, cs in enumerate(statuses):
            count, finished = int(cs.get("restartCount") or 0), _finished(cs)
            self.restarts += count
            self.last_restart = _later(self.last_restart, finished)
            is_sidecar = cs.get("name") in self.sidecars
            if is_sidecar:
                sidecar_restarts += count
                sidecar_last = _later(sidecar_last, finished)
            state = cs.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting") or {}
            if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
                continue
            if is_sidecar and cs.get("started"):
                self.ready += 1 if cs.get("ready") else 0
                continue
            if terminated is not None:
                self.reason = "Init:" + _terminated_reason(terminated)
            elif waiting.get("reason") and waiting["reason"] != "PodInitializing":
                self.reason = "Init:" + waiting["reason"]
            else:
                self.reason = f"Init:{i}/{len(self.spec.get('initContainers') or [])}"
            initializing = True
            break
        return initializing, sidecar_restarts, sidecar_last

    def _containers(self) -> None:
        running = False
        for cs in reversed(self.status.get("containerStatuses") or []):
            self.restarts += int(cs.get("restartCount") or 0)
            self.last_restart = _later(self.last_restart, _finished(cs))
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting") or {}, state.get("terminated")
            if waiting.get("reason"):
                self.reason = waiting["reason"]
            elif terminated is not None:
                self.reason = _terminated_reason(terminated)
            elif cs.get("ready") and state.get("running") is not None:
                running = True
                self.ready += 1
        if self.reason == "Completed" and running:
            self.reason = "Running" if _condition_true(self.conditions, "Ready") else "NotReady"

    def restarts_text(self, now: datetime) -> str:
        """``2``, or ``2 (30s ago)`` when the latest restart time is known."""
        if self.restarts and self.last_restart is not None:
            ago = timeutil.human_duration((now - self.last_restart).total_seconds())
            return f"{self.restarts} ({ago} ago)"
        return str(self.restarts)

    def readiness_gates(self) -> str:
        """``passed/total`` readiness gates, ``<none>`` without any."""
        gates = self.spec.get("readinessGates") or []
        if not gates:
            return _NONE
        first: dict[str, str] = {}
        for c in self.conditions:
            first.setdefault(c.get("type"), c.get("status"))
        passed = sum(1 for g in gates if first.get(g.get("conditionType")) == "True")
        return f"{passed}/{len(gates)}"


def _pod(pod: dict[str, Any], now: datetime) -> Cells:
    s = _PodSummary(pod)
    name, age = _name_age(pod, now)
    ips = s.status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips else s.status.get("podIP")) or _NONE
    return [
        name,
        f"{s.ready}/{s.total}",
        s.reason,
        s.restarts_text(now),
        age,
        ip,
        s.spec.get("nodeName") or _NONE,
        s.status.get("nominatedNodeName") or _NONE,
        s.readiness_gates(),
    ]


_FINISHED_MESSAGES = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}


def _pod_conditions(pod: dict[str, Any]) -> list[dict[str, str]]:
    """Row conditions kubectl uses to mark finished pods."""
    phase = (pod.get("status") or {}).get("phase")
    message = _FINISHED_MESSAGES.get(phase or "")
    if message is None:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase or "", "message": message}]


# ---------------------------------------------------------------------------
# Workloads.

_DEPLOYMENT_COLUMNS = [
    _NAME,
    _column("Ready", "Ready pods out of desired pods."),
    _column("Up-to-date", "Pods running the latest pod template."),
    _column("Available", "Pods ready for at least minReadySeconds."),
    _AGE,
    *_TEMPLATE_COLUMNS,
]


def _deployment(obj: dict[str, Any], now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name, age = _name_age(obj, now)
    ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"
    names, images = _template_cells(obj)
    selector = _selector_text(spec.get("selector"), "")
    counts = [status.get("updatedReplicas", 0), status.get("availableReplicas", 0)]
    return [name, ready, *counts, age, names, images, selector]


_REPLICASET_COLUMNS = [
    _NAME,
    _column("Desired", "Number of pods wanted.", "integer"),
    _column("Current", "Number of pods that exist.", "integer"),
    _column("Ready", "Number of pods that are ready.", "integer"),
    _AGE,
    *_TEMPLATE_COLUMNS,
]


def _replicaset(obj: dict[str, Any], now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name, age = _name_age(obj, now)
    names, images = _template_cells(obj)
    counts = [spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0)]
    return [name, *counts, age, names, images, _selector_text(spec.get("selector"), _NONE)]


# ---------------------------------------------------------------------------
# Services and endpoints.

_SERVICE_COLUMNS = [
    _NAME,
    _column("Type", "How the service is exposed."),
    _column("Cluster-IP", "The service's virtual IP inside the cluster."),
    _column("External-IP", "Addresses the service is reachable at from outside."),
    _column("Port(s)", "Service ports, with node ports where allocated."),
    _AGE,
    _column("Selector", "Labels of the pods the service routes to.", wide=True),
]


def _external_ip(spec: dict[str, Any], status: dict[str, Any]) -> str:
    kind, external = spec.get("type") or "ClusterIP", spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or _NONE
    if kind == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        balancers = sorted({i.get("ip") or i.get("hostname") for i in ingress} - {None, ""})
        return ",".join(balancers + external) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _ports(ports: list[dict[str, Any]]) -> str:
    pieces = []
    for p in ports:
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        pieces.append(f"{p.get('port', 0)}{node_port}/{p.get('protocol') or 'TCP'}")
    return ",".join(pieces) or _NONE


def _service(obj: dict[str, Any], now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name, age = _name_age(obj, now)
    cluster_ip = ((spec.get("clusterIPs") or [None])[0] or spec.get("clusterIP")) or _NONE
    return [
        name,
        spec.get("type") or "ClusterIP",
        cluster_ip,
        _external_ip(spec, status),
        _ports(spec.get("ports") or []),
        age,
        _labels_text(spec.get("selector")),
    ]


def _host_port(ip: str, port: Any) -> str:
    try:
        v6 = ipaddress.ip_address(ip).version == 6
    except ValueError:
        v6 = ":" in ip
    return f"[{ip}]:{port}" if v6 else f"{ip}:{port}"


def _endpoints(obj: dict[str, Any], now: datetime) -> Cells:
    name, age = _name_age(obj, now)
    subsets = obj.get("subsets") or []
    items: list[str] = []
    for subset in subsets:
        ips = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        items += ips if not ports else [_host_port(ip, p.get("port", 0)) for p in ports for ip in ips]
    return [name, _list_with_more(items, empty="") if subsets else _NONE, age]


def _endpointslice(obj: dict[str, Any], now: datetime) -> Cells:
    name, age = _name_age(obj, now)
    ports = [
        str(p["port"]) if p.get("port") is not None else p.get("name") or "*" for p in obj.get("ports") or []
    ]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [name, obj.get("addressType", ""), _list_with_more(ports), _list_with_more(addresses), age]


# ---------------------------------------------------------------------------
# Cluster objects: nodes, namespaces, events.

_NODE_COLUMNS = [
    _NAME,
    _column("Status", "The status of the node."),
    _column("Roles", "The roles of the node."),
    _AGE,
    _column("Version", "Kubelet version."),
    _column("Internal-IP", "The node's internal address.", wide=True),
    _column("External-IP", "The node's external address.", wide=True),
    _column("OS-Image", "Operating system image.", wide=True),
    _column("Kernel-Version", "Kernel version.", wide=True),
    _column("Container-Runtime", "Container runtime and version.", wide=True),
]
_ROLE_PREFIX = "node-role.kubernetes.io/"


def _node_status(obj: dict[str, Any]) -> str:
    ready = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    words = ["Unknown" if not ready else "Ready" if ready[-1].get("status") == "True" else "NotReady"]
    if (obj.get("spec") or {}).get("unschedulable"):
        words.append("SchedulingDisabled")
    return ",".join(words)


def _node_roles(labels: dict[str, str]) -> str:
    roles = {k.removeprefix(_ROLE_PREFIX) for k in labels if k.startswith(_ROLE_PREFIX)} - {""}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    return ",".join(sorted(roles)) or _NONE


def _node_address(status: dict[str, Any], kind: str) -> str:
    return next((a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == kind), _NONE)


def _node(obj: dict[str, Any], now: datetime) -> Cells:
    status = obj.get("status") or {}
    info = status.get("nodeInfo") or {}
    name, age = _name_age(obj, now)
    return [
        name,
        _node_status(obj),
        _node_roles(_meta(obj).get("labels") or {}),
        age,
        info.get("kubeletVersion", ""),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


_NAMESPACE_COLUMNS = [_NAME, _column("Status", "The status of the namespace."), _AGE]


def _namespace(obj: dict[str, Any], now: datetime) -> Cells:
    name, age = _name_age(obj, now)
    return [name, (obj.get("status") or {}).get("phase", ""), age]


_EVENT_COLUMNS = [
    _column("Last Seen", "When the event was last seen."),
    _column("Type", "Normal or Warning."),
    _column("Reason", "Short, machine-readable reason for the event."),
    _column("Object", "The object the event is about (kind/name)."),
    _column("Subobject", "The part of the object, such as a container.", wide=True),
    _column("Source", "The component (and host) that reported the event.", wide=True),
    _column("Message", "What happened."),
    _column("First Seen", "When the event was first seen.", wide=True),
    _column("Count", "How many times the event occurred.", wide=True),
    {**_NAME, "priority": 1},
]


def _event(obj: dict[str, Any], now: datetime) -> Cells:
    involved, source = obj.get("involvedObject") or {}, obj.get("source") or {}
    first = timeutil.age(obj.get("firstTimestamp") or obj.get("eventTime"), now)
    last = timeutil.age(obj["lastTimestamp"], now) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 1
    if obj.get("series"):
        last = timeutil.age(obj["series"].get("lastObservedTime"), now)
        count = obj["series"].get("count", 0)
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{component}, {host}" if host else component,
        (obj.get("message") or "").strip(),
        first,
        count,
        _meta(obj).get("name", ""),
    ]


# ---------------------------------------------------------------------------
# Configuration and coordination objects, and the fallback.

_CONFIGMAP_COLUMNS = [_NAME, _column("Data", "Number of data keys."), _AGE]
_SECRET_COLUMNS = [
    _NAME,
    _column("Type", "The secret's type."),
    _column("Data", "Number of data keys."),
    _AGE,
]
_SERVICEACCOUNT_COLUMNS = [_NAME, _column("Secrets", "Number of secrets."), _AGE]
_LEASE_COLUMNS = [_NAME, _column("Holder", "The current holder of the lease."), _AGE]
_DEFAULT_COLUMNS = [_NAME, _AGE]


def _configmap(obj: dict[str, Any], now: datetime) -> Cells:
    name, age = _name_age(obj, now)
    return [name, len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age]


def _secret(obj: dict[str, Any], now: datetime) -> Cells:
    name, age = _name_age(obj, now)
    return [name, obj.get("type", ""), len(obj.get("data") or {}), age]


def _serviceaccount(obj: dict[str, Any], now: datetime) -> Cells:
    name, age = _name_age(obj, now)
    return [name, len(obj.get("secrets") or []), age]


def _lease(obj: dict[str, Any], now: datetime) -> Cells:
    name, age = _name_age(obj, now)
    return [name, (obj.get("spec") or {}).get("holderIdentity") or "", age]


def _default(obj: dict[str, Any], now: datetime) -> Cells:
    return list(_name_age(obj, now))


_PRINTERS: dict[str, tuple[list[dict[str, Any]], Printer]] = {
    "core/pods": (_POD_COLUMNS, _pod),
    "apps/deployments": (_DEPLOYMENT_COLUMNS, _deployment),
    "apps/replicasets": (_REPLICASET_COLUMNS, _replicaset),
    "core/services": (_SERVICE_COLUMNS, _service),
    "core/endpoints": ([_NAME, _column("Endpoints", "Ready addresses and ports."), _AGE], _endpoints),
    "discovery.k8s.io/endpointslices": (
        [
            _NAME,
            _column("AddressType", "IPv4, IPv6 or FQDN."),
            _column("Ports", "Ports of the slice."),
            _column("Endpoints", "Endpoint addresses."),
            _AGE,
        ],
        _endpointslice,
    ),
    "core/nodes": (_NODE_COLUMNS, _node),
    "core/namespaces": (_NAMESPACE_COLUMNS, _namespace),
    "core/events": (_EVENT_COLUMNS, _event),
    "core/configmaps": (_CONFIGMAP_COLUMNS, _configmap),
    "core/secrets": (_SECRET_COLUMNS, _secret),
    "core/serviceaccounts": (_SERVICEACCOUNT_COLUMNS, _serviceaccount),
    "coordination.k8s.io/leases": (_LEASE_COLUMNS, _lease),
}


def _row_object(rt: ResourceType, obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return {"kind": rt.kind, "apiVersion": rt.api_version, **obj}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}


def to_table(
    rt: ResourceType,
    objects: list[dict[str, Any]],
    *,
    resource_version: str,
    include_object: str = "Metadata",
    now: datetime | None = None,
    column_definitions: bool = True,
) -> dict[str, Any]:
    """The ``Table`` for ``objects`` of type ``rt``, as kube-apiserver answers ``Accept: ...;as=Table``.

    ``include_object`` is the ``includeObject`` query value: ``Metadata`` (also ``""``) puts a
    ``PartialObjectMetadata`` with the full metadata in each row (``-A`` and ``--show-labels`` read
    it), ``Object`` the whole object (``--sort-by``), ``None`` a null. Any other value raises a 400
    ``ApiError``. ``column_definitions=False`` leaves ``columnDefinitions`` empty, as for watch events
    after the first. ``now`` fixes the reference time of the Age-like cells.
    """
    include_object = include_object or "Metadata"
    if include_object not in INCLUDE_OBJECT:
        raise bad_request(
            f'unrecognized includeObject value: "{include_object}" (supported: {", ".join(INCLUDE_OBJECT)})'
        )
    now = now or timeutil.now()
    definitions, printer = _PRINTERS.get(rt.key, (_DEFAULT_COLUMNS, _default))
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer(obj, now), "object": _row_object(rt, obj, include_object)}
        if rt.key == "core/pods" and (conditions := _pod_conditions(obj)):
            row["conditions"] = conditions
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [dict(c) for c in definitions] if column_definitions else [],
        "rows": rows,
    }
