"""Defaulting: the fields kube-apiserver fills in on create and update.

These mirror upstream's ``SetDefaults_*`` functions (k8s.io/kubernetes
``pkg/apis/{core,apps}/v1/defaults.go``) plus the few admission and conversion steps
a learner sees in ``kubectl get -o yaml`` (a Pod's service account and default
tolerations, a Secret's ``stringData``). Every function only fills what is missing, so
defaulting twice changes nothing.

A Deployment's template and the ReplicaSet template built from it go through the same
:func:`default_pod_template`, so ``kubectl describe`` finds them equal.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from labkit.embedded.resources import ResourceType

Obj = dict[str, Any]

DEFAULT_TOLERATION_SECONDS = 300
CLIENT_IP_TIMEOUT_SECONDS = 10800
VOLUME_DEFAULT_MODE = 0o644  # 420, as the API shows it


def apply_defaults(
    rt: ResourceType, obj: Obj, *, toleration_seconds: int = DEFAULT_TOLERATION_SECONDS
) -> None:
    """Fill in what kube-apiserver defaults for an object of this kind (in place, idempotent).
    ``toleration_seconds`` is what DefaultTolerationSeconds admission gives pods for not-ready
    and unreachable nodes (a cluster setting; upstream's default is 300)."""
    if rt.kind == "Pod":
        _pod(obj, toleration_seconds)
        return
    handler = _BY_KIND.get(rt.kind)
    if handler is not None:
        handler(obj)


# -- workloads -----------------------------------------------------------------------------


def _deployment(obj: Obj) -> None:
    spec = _child(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = _child(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_pod_template(_child(spec, "template"))


def _replicaset(obj: Obj) -> None:
    spec = _child(obj, "spec")
    spec.setdefault("replicas", 1)
    default_pod_template(_child(spec, "template"))


def default_pod_template(template: Obj) -> None:
    """Default a pod template (Deployment, ReplicaSet): metadata as Go serializes it, then the spec."""
    meta = _child(template, "metadata")
    meta.setdefault("creationTimestamp", None)
    default_pod_spec(_child(template, "spec"))


def default_pod_spec(spec: Obj) -> None:
    """``SetDefaults_PodSpec`` and everything below it: containers, probes, volumes, env."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    for container in [*_items(spec, "initContainers"), *_items(spec, "containers")]:
        _container(container, host_network=bool(spec.get("hostNetwork")))
    for volume in _items(spec, "volumes"):
        _volume(volume)


def _pod(obj: Obj, toleration_seconds: int = DEFAULT_TOLERATION_SECONDS) -> None:
    """A Pod gets its spec defaulted plus what ``SetDefaults_Pod`` and admission add."""
    spec = _child(obj, "spec")
    for container in [*_items(spec, "initContainers"), *_items(spec, "containers")]:
        _requests_from_limits(container)
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    # ServiceAccount admission; the deprecated field mirrors it on output.
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    # Priority admission with no PriorityClass.
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    _default_tolerations(spec, toleration_seconds)


def _requests_from_limits(container: Obj) -> None:
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    if limits:
        requests = resources.setdefault("requests", {})
        for name, value in limits.items():
            requests.setdefault(name, value)


def _default_tolerations(spec: Obj, seconds: int) -> None:
    """DefaultTolerationSeconds admission: tolerate not-ready and unreachable nodes for a while."""
    tolerations = spec.setdefault("tolerations", [])
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        covered = any(
            t.get("key", "") in (taint, "") and t.get("effect", "") in ("NoExecute", "")
            for t in tolerations
            if isinstance(t, dict)
        )
        if not covered:
            tolerations.append(
                {
                    "key": taint,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": seconds,
                }
            )


# -- containers ----------------------------------------------------------------------------


def _container(container: Obj, *, host_network: bool) -> None:
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = pull_policy(container.get("image") or "")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    if container.get("resources") is None:
        container["resources"] = {}
    for port in _items(container, "ports"):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if host_network and not port.get("hostPort") and port.get("containerPort"):
            port["hostPort"] = port["containerPort"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(container.get(probe), dict):
            _probe(container[probe])
    for hook in ("postStart", "preStop"):
        handler = (container.get("lifecycle") or {}).get(hook)
        if isinstance(handler, dict):
            _handler(handler)
    for env in _items(container, "env"):
        _env_source(env.get("valueFrom") or {})


def pull_policy(image: str) -> str:
    """``Always`` for ``:latest`` or no tag, else ``IfNotPresent`` (a digest counts as a tag)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ""
    if not tag and not digest and image:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _probe(probe: Obj) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    _handler(probe)


def _handler(handler: Obj) -> None:
    http = handler.get("httpGet")
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        if not http.get("scheme"):
            http["scheme"] = "HTTP"
    grpc = handler.get("grpc")
    if isinstance(grpc, dict):
        grpc.setdefault("service", "")


def _env_source(source: Obj) -> None:
    field_ref = source.get("fieldRef")
    if isinstance(field_ref, dict) and not field_ref.get("apiVersion"):
        field_ref["apiVersion"] = "v1"
    resource_ref = source.get("resourceFieldRef")
    if isinstance(resource_ref, dict):
        resource_ref.setdefault("divisor", "0")


# -- volumes ---------------------------------------------------------------------------------

_VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
)


def _volume(volume: Obj) -> None:
    if not any(key in volume for key in _VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = volume.get(key)
        if isinstance(source, dict):
            source.setdefault("defaultMode", VOLUME_DEFAULT_MODE)
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        host_path.setdefault("type", "")
    downward = volume.get("downwardAPI")
    if isinstance(downward, dict):
        for item in _items(downward, "items"):
            _env_source(item)


# -- services and the rest -----------------------------------------------------------------


def _service(obj: Obj) -> None:
    spec = _child(obj, "spec")
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _child(_child(spec, "sessionAffinityConfig"), "clientIP")
        client_ip.setdefault("timeoutSeconds", CLIENT_IP_TIMEOUT_SECONDS)
    for port in _items(spec, "ports"):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec["type"]
    externally = kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and spec.get("externalIPs"))
    if externally and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if kind in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("ipFamilies", ["IPv4"])
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)


def _secret(obj: Obj) -> None:
    """Type Opaque; ``stringData`` is write-only and folds into ``data`` as base64."""
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _namespace(obj: Obj) -> None:
    name = _child(obj, "metadata").get("name")
    if name:
        _child(obj["metadata"], "labels")["kubernetes.io/metadata.name"] = name
    finalizers = _child(obj, "spec").get("finalizers")
    if finalizers is None:
        obj["spec"]["finalizers"] = ["kubernetes"]
    status = _child(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def _node(obj: Obj) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


def _endpoints(obj: Obj) -> None:
    for subset in _items(obj, "subsets"):
        for port in _items(subset, "ports"):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def _endpointslice(obj: Obj) -> None:
    for port in _items(obj, "ports"):
        port.setdefault("name", "")
        if not port.get("protocol"):
            port["protocol"] = "TCP"


# -- helpers -------------------------------------------------------------------------------


def _child(parent: Obj, key: str) -> Obj:
    """``parent[key]`` as a dict, created when missing or null."""
    value = parent.get(key)
    if not isinstance(value, dict):
        value = parent[key] = {}
    return value


def _items(parent: Obj, key: str) -> list[Obj]:
    """The dict entries of the list ``parent[key]`` (nothing when absent or malformed)."""
    value = parent.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


_BY_KIND: dict[str, Callable[[Obj], None]] = {
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "Pod": _pod,
    "Service": _service,
    "Secret": _secret,
    "Namespace": _namespace,
    "Node": _node,
    "Endpoints": _endpoints,
    "EndpointSlice": _endpointslice,
}
