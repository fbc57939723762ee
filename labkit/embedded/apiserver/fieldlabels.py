"""The field labels each kind supports in ``fieldSelector`` (``AddFieldLabelConversionFunc``).

kube-apiserver refuses any other label with 400 ``field label not supported: <label>``; these
are the labels of v1.32 for the kinds served here.
"""

from __future__ import annotations

from labkit.embedded.apiserver.status import bad_request
from labkit.embedded.resources import ResourceType

_COMMON = frozenset({"metadata.name", "metadata.namespace"})
_BY_KIND: dict[str, frozenset[str]] = {
    "Pod": frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        }
    ),
    "Event": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    "Node": frozenset({"spec.unschedulable"}),
    "Namespace": frozenset({"status.phase"}),
    "Secret": frozenset({"type"}),
    "ReplicaSet": frozenset({"status.replicas"}),
    "ReplicationController": frozenset({"status.replicas"}),
    "Job": frozenset({"status.successful"}),
    "Service": frozenset({"spec.clusterIP", "spec.type"}),
    "CertificateSigningRequest": frozenset({"spec.signerName"}),
}


def supported(rt: ResourceType) -> frozenset[str]:
    """The field labels ``rt`` can be selected by."""
    return _COMMON | _BY_KIND.get(rt.kind, frozenset())


def check(rt: ResourceType, paths: list[str]) -> None:
    """400 for the first path ``rt`` does not support, as upstream words it."""
    allowed = supported(rt)
    for path in paths:
        if path not in allowed:
            raise bad_request(
                f"field label not supported: {path} (a {rt.kind} can be selected by: "
                + ", ".join(sorted(allowed))
                + ")"
            )
