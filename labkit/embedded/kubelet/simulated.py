"""The simulated runtime: pods whose containers run nowhere, for scale tests and demos.

A simulated pod goes Running and Ready as soon as its kubelet sees it (probes count as
passing, init containers as completed) and never exits. Pods are handled in batches, one
status write each and no task or timer per pod, so a node holds hundreds cheaply. Deleting one
removes it at once. No kubelet events are recorded for them (as with kwok).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from labkit.embedded.apiserver.status import ApiError
from labkit.embedded.kubelet.status import ContainerRecord, pod_status
from labkit.embedded.podlogs import container_id
from labkit.embedded.resources import lookup
from labkit.embedded.runnable_images import image_id
from labkit.shared.contract import RUNTIME_ANNOTATION
from labkit.shared.timeutil import rfc3339

if TYPE_CHECKING:
    from labkit.embedded.kubelet.host import NodeHost

PODS = lookup("", "v1", "pods")
assert PODS is not None
ANNOTATION = RUNTIME_ANNOTATION


def wants_simulation(pod: dict[str, Any], default_runtime: str) -> bool:
    """Whether a pod runs simulated: the cluster's runtime, or its own annotation."""
    annotations = pod["metadata"].get("annotations") or {}
    return annotations.get(ANNOTATION, default_runtime) == "simulated"


class SimulatedPods:
    """The simulated pods of one node."""

    def __init__(self, kubelet: NodeHost) -> None:
        self.kubelet = kubelet
        self.ips: dict[str, str] = {}  # pod UID -> IP
        self._pending: dict[str, dict[str, Any]] = {}
        self._scheduled = False

    def __contains__(self, uid: str) -> bool:
        return uid in self.ips

    def admit(self, pod: dict[str, Any], ip: str = "") -> None:
        """Take a pod on (new with its IP, changed, or after a restart); its status is written in
        the next batch."""
        uid = pod["metadata"]["uid"]
        if uid not in self.ips:
            self.ips[uid] = ip
        status = pod.get("status") or {}
        if pod["metadata"].get("deletionTimestamp") or status.get("phase") != "Running":
            self._pending[uid] = pod
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    def forget(self, uid: str) -> None:
        """The pod is gone."""
        ip = self.ips.pop(uid, None)
        if ip is not None:
            self.kubelet.pool.release(ip)
        self._pending.pop(uid, None)

    def clear(self) -> None:
        """Drop every pod (the node stopped)."""
        for uid in list(self.ips):
            self.forget(uid)

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for uid, pod in pending.items():
            if uid not in self.ips or not self.kubelet.running:
                continue
            meta = pod["metadata"]
            try:
                if meta.get("deletionTimestamp"):
                    self.kubelet.ctx.registry.finish_deletion(PODS, meta.get("namespace"), meta["name"])
                else:
                    self._write(pod, self.ips[uid])
            except ApiError:
                pass  # gone or changed meanwhile: its next event brings it back

    def _write(self, pod: dict[str, Any], ip: str) -> None:
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        now = rfc3339()
        records = []
        for key, init in (("initContainers", True), ("containers", False)):
            for c in spec.get(key) or []:
                name = str(c["name"])
                record = ContainerRecord(name, str(c.get("image", "")), init=init)
                record.image_id = f"{c.get('image', '')}@{image_id(str(c.get('image', '')))}"
                record.container_id = container_id(meta["uid"], name, 0)
                if init:
                    record.terminated(0, "Completed")
                else:
                    record.state = {"running": {"startedAt": now}}
                    record.ready = record.started = True
                records.append(record)

        def change(current: dict[str, Any]) -> None:
            if current["metadata"].get("uid") != meta["uid"]:
                return
            current["status"] = pod_status(
                current.get("status") or {},
                records,
                str(spec.get("restartPolicy") or "Always"),
                pod_ip=ip,
                host_ip=self.kubelet.host_ip,
                start_time=now,
            )

        self.kubelet.ctx.registry.mutate(
            PODS, meta.get("namespace"), meta["name"], change, subresource="status", manager="kubelet"
        )
