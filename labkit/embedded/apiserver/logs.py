"""The ``pods/log`` subresource: container output as ``kubectl logs`` reads it.

The kubelets write the logs; this module only serves them, through a :class:`LogSource`
(``labkit.embedded.podlogs.PodLogs`` in the daemon).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web

from labkit.embedded.apiserver import routing
from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.apiserver.status import ApiError, bad_request, method_not_allowed

DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


class LogSource(Protocol):
    """Where container logs come from."""

    async def read(self, pod: dict[str, Any], container: str, **options: Any) -> bytes:
        """The log (or the previous instance's), filtered by the options."""

    def follow(self, pod: dict[str, Any], container: str, **options: Any) -> AsyncIterator[bytes]:
        """The log, then new output as it comes, until the container stops."""


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f'{name} must be a whole number, not "{raw}"') from None
    bound = "0" if name == "limitBytes" else "or equal to 0"
    if value < 0 or (name == "limitBytes" and value == 0):
        raise bad_request(f"{name}: Invalid value: {value}: must be greater than {bound}")
    return value


def pick_container(pod: dict[str, Any], wanted: str) -> str:
    """The container a log request means, as kube-apiserver chooses it."""
    spec = pod.get("spec", {})
    names = [c["name"] for c in spec.get("containers", [])]
    init_names = [c["name"] for c in spec.get("initContainers", [])]
    name = pod["metadata"]["name"]
    if wanted:
        if wanted not in names and wanted not in init_names:
            raise bad_request(f"container {wanted} is not valid for pod {name}")
        return wanted
    default = (pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER)
    if default in names:
        return default
    if len(names) == 1:
        return names[0]
    choices = " ".join(names)
    extra = f" or one of the init containers: [{' '.join(init_names)}]" if init_names else ""
    raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{choices}]{extra}")


def _check_started(pod: dict[str, Any], container: str, previous: bool) -> None:
    statuses = [
        *pod.get("status", {}).get("containerStatuses", []),
        *pod.get("status", {}).get("initContainerStatuses", []),
    ]
    status = next((s for s in statuses if s.get("name") == container), None)
    name = pod["metadata"]["name"]
    if previous:
        return
    waiting = (status or {}).get("state", {}).get("waiting")
    if status is None or (waiting is not None and not status.get("lastState", {}).get("terminated")):
        reason = (waiting or {}).get("reason", "ContainerCreating")
        if reason in ("ErrImagePull", "ImagePullBackOff"):
            reason = "trying and failing to pull image"
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')


class LogHandler:
    """Serves ``GET .../pods/NAME/log``."""

    def __init__(self, registry: Registry, source: LogSource | None) -> None:
        self.registry = registry
        self.source = source

    async def handle(self, request: web.Request, target: routing.Target) -> web.StreamResponse:
        """Answer with the log as text/plain, streaming it with ``follow=true``."""
        if request.method != "GET":
            raise method_not_allowed()
        assert target.name is not None
        pod = self.registry.get(target.rt, target.namespace, target.name)
        container = pick_container(pod, request.query.get("container", ""))
        previous = request.query.get("previous", "").lower() in ("true", "1")
        options = {
            "previous": previous,
            "tail_lines": _int(request, "tailLines"),
            "since_seconds": _int(request, "sinceSeconds"),
            "timestamps": request.query.get("timestamps", "").lower() in ("true", "1"),
            "limit_bytes": _int(request, "limitBytes"),
        }
        _check_started(pod, container, previous)
        if self.source is None:
            raise ApiError(503, "this cluster keeps no container logs", "ServiceUnavailable")
        follow = request.query.get("follow", "").lower() in ("true", "1")
        if not follow:
            try:
                body = await self.source.read(pod, container, **options)
            except LookupError as e:
                raise bad_request(str(e.args[0] if e.args else e)) from None
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        try:
            stream = self.source.follow(pod, container, **options)
            first = await anext(stream, None)
        except LookupError as e:
            raise bad_request(str(e.args[0] if e.args else e)) from None
        await response.prepare(request)
        try:
            if first:
                await response.write(first)
            async for chunk in stream:
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response
