"""Which lists a strategic merge patch merges, per kind, and on which merge key.

The table is taken from the ``patchStrategy``/``patchMergeKey`` struct tags of k8s.io/api
``core/v1`` and ``apps/v1``; :mod:`~labkit.embedded.apiserver.strategic_merge` reads it.
"""

from __future__ import annotations

# A path names a list field: "." separates fields, "[]" means "each element of the list".
# The value is the list's merge key, or "" for a list of strings that merges as a set.
# Every other list is replaced whole by the patch (tolerations, args, command, node taints,
# namespace spec.finalizers, endpoints subsets, ...), as upstream has no patch strategy there.

_OBJECT_META = {"finalizers": "", "ownerReferences": "uid"}

_CONTAINER = {
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
}


def _under(prefix: str, table: dict[str, str]) -> dict[str, str]:
    """The same merge lists, one level further down the object."""
    return {f"{prefix}.{path}": key for path, key in table.items()}


_POD_SPEC = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "imagePullSecrets": "name",
    "volumes": "name",  # upstream also marks it retainKeys; $retainKeys is honoured anywhere
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "schedulingGates": "name",
    "resourceClaims": "name",
    **_under("containers[]", _CONTAINER),
    **_under("initContainers[]", _CONTAINER),
    **_under("ephemeralContainers[]", _CONTAINER),
}

_POD_STATUS = {"conditions": "type", "podIPs": "ip", "hostIPs": "ip", "resourceClaimStatuses": "name"}

_POD_TEMPLATE = {**_under("metadata", _OBJECT_META), **_under("spec", _POD_SPEC)}

_CONDITIONS = {"conditions": "type"}

_MERGE_LISTS: dict[str, dict[str, str]] = {
    "Pod": {**_under("spec", _POD_SPEC), **_under("status", _POD_STATUS)},
    "Deployment": {**_under("spec.template", _POD_TEMPLATE), **_under("status", _CONDITIONS)},
    "ReplicaSet": {**_under("spec.template", _POD_TEMPLATE), **_under("status", _CONDITIONS)},
    "Service": {"spec.ports": "port", **_under("status", _CONDITIONS)},
    "Node": {"spec.podCIDRs": "", "status.addresses": "type", **_under("status", _CONDITIONS)},
    "Namespace": _under("status", _CONDITIONS),
    "ServiceAccount": {"secrets": "name"},
}


def _parse_path(path: str) -> tuple[str, ...]:
    return tuple(path.replace("[]", "").split("."))


def merge_keys_for(kind: str) -> dict[tuple[str, ...], str]:
    """The merge lists of ``kind`` (any kind has ObjectMeta's) keyed by field path."""
    table = {**_under("metadata", _OBJECT_META), **_MERGE_LISTS.get(kind, {})}
    return {_parse_path(path): key for path, key in table.items()}
