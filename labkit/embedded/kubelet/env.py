"""A container's environment and command line, worked out as kubelet does it.

The environment is the image's, then the service links (kubelet's ``<NAME>_SERVICE_HOST`` family
for the Services of the pod's namespace that exist when the container starts, see
:func:`service_env`), then the cluster's HTTP proxy (``HTTP_PROXY``, ``NO_PROXY``, see
:func:`proxy_env`), then labkit's own (``HOSTNAME``, ``POD_IP``, and ``PORT`` when the
container declares a port), then ``envFrom`` sources, then ``env`` entries, later ones
winning. Values may come from ConfigMaps, Secrets and the downward API; ``$(VAR)``
references in values, commands and args are expanded from the variables the pod spec
defines. A missing ConfigMap, Secret or key is a :class:`ConfigError`
(CreateContainerConfigError) with upstream's message, unless optional.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from labkit.embedded.runnable_images import Image
from labkit.embedded.store import Store

_LABEL_PATH = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


MASTER_SERVICES = ("kubernetes",)  # from the default namespace, given to every pod


class ConfigError(Exception):
    """The container's configuration refers to something missing (CreateContainerConfigError)."""


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand ``$(VAR)`` in ``text`` as Kubernetes does: ``$$`` is a literal ``$`` and an
    unknown variable stays as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            value = lookup(name)
            out.append(value if value is not None else f"$({name})")
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def env_name(name: str) -> str:
    """A service or port name as an environment variable name part: upper case, '-' → '_'."""
    return name.upper().replace("-", "_")


def _link_vars(service: dict[str, Any]) -> dict[str, str]:
    spec = service["spec"]
    ip, ports = str(spec["clusterIP"]), spec["ports"]
    prefix = env_name(service["metadata"]["name"])
    out = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0]["port"])}
    for port in ports:
        if port.get("name"):
            out[f"{prefix}_SERVICE_PORT_{env_name(port['name'])}"] = str(port["port"])
    for index, port in enumerate(ports):
        protocol = str(port.get("protocol") or "TCP")
        url = f"{protocol.lower()}://{ip}:{port['port']}"
        if index == 0:
            out[f"{prefix}_PORT"] = url
        base = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
        out[base] = url
        out[f"{base}_PROTO"] = protocol.lower()
        out[f"{base}_PORT"] = str(port["port"])
        out[f"{base}_ADDR"] = ip
    return out


def service_env(store: Store, namespace: str, links: bool = True) -> dict[str, str]:
    """The variables kubelet gives a container for Services: ``kubernetes`` from the default
    namespace always, and (when ``links``, the pod's ``enableServiceLinks``) every Service of
    ``namespace`` that has a cluster IP. Each gives ``<NAME>_SERVICE_HOST``,
    ``<NAME>_SERVICE_PORT`` (first port), ``<NAME>_SERVICE_PORT_<PORTNAME>`` (named ports),
    ``<NAME>_PORT`` (``tcp://ip:port`` of the first port) and for every port
    ``<NAME>_PORT_<port>_<PROTO>`` with ``_PROTO``, ``_PORT`` and ``_ADDR``."""
    chosen: dict[str, dict[str, Any]] = {}
    for name in MASTER_SERVICES:
        service = store.find("core/services", "default", name)
        if service is not None:
            chosen[name] = service
    if links:
        services, _ = store.list("core/services", namespace)
        for service in services:
            chosen.setdefault(service["metadata"]["name"], service)
    out: dict[str, str] = {}
    for service in chosen.values():
        spec = service.get("spec") or {}
        if spec.get("clusterIP") in (None, "", "None") or not spec.get("ports"):
            continue
        out.update(_link_vars(service))
    return out


def proxy_env(url: str) -> dict[str, str]:
    """The variables that send a container's HTTP calls through the cluster's proxy at ``url``,
    except calls to loopback, which stay direct."""
    direct = "localhost,127.0.0.1"
    return {"HTTP_PROXY": url, "http_proxy": url, "NO_PROXY": direct, "no_proxy": direct}


class Environment:
    """Works out the environment of one container of one pod; ``proxy_url`` is the address of
    the cluster's HTTP proxy for the pod's namespace (None: no proxy variables)."""

    def __init__(
        self,
        store: Store,
        pod: dict[str, Any],
        node: str,
        pod_ip: str,
        host_ip: str,
        proxy_url: str | None = None,
    ) -> None:
        self.store = store
        self.pod = pod
        self.namespace = pod["metadata"].get("namespace", "default")
        self.node = node
        self.pod_ip = pod_ip
        self.host_ip = host_ip
        self.proxy_url = proxy_url

    def hostname(self) -> str:
        """The pod's host name: ``spec.hostname`` or its name."""
        return str(self.pod.get("spec", {}).get("hostname") or self.pod["metadata"]["name"])

    def build(
        self, container: dict[str, Any], image: Image, port: int | None
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        """The environment and the command line (entrypoint and cmd, overridden by the pod's
        command and args, expanded) of ``container``; raises :class:`ConfigError`."""
        links = self.pod.get("spec", {}).get("enableServiceLinks", True) is not False
        own = service_env(self.store, self.namespace, links)
        if self.proxy_url:
            own.update(proxy_env(self.proxy_url))
        own.update({"HOSTNAME": self.hostname(), "POD_IP": self.pod_ip})
        if port:
            own["PORT"] = str(port)
        for source in container.get("envFrom") or []:
            own.update(self._from_source(source))
        for entry in container.get("env") or []:
            value = self._value(entry, container, own)
            if value is not None:
                own[entry["name"]] = value
        return {**dict(image.config.env), **own}, self._argv(container, image, own.get)

    @staticmethod
    def _argv(
        container: dict[str, Any], image: Image, lookup: Callable[[str], str | None]
    ) -> tuple[str, ...]:
        command = container.get("command")
        args = container.get("args")
        if command:
            argv = [*command, *(args or [])]
        else:
            argv = [*image.config.entrypoint, *(args if args else image.config.cmd)]
        return tuple(expand(str(a), lookup) for a in argv)

    def _value(self, entry: dict[str, Any], container: dict[str, Any], defined: dict[str, str]) -> str | None:
        if "valueFrom" not in entry or entry.get("value"):
            return expand(str(entry.get("value") or ""), defined.get)
        source = entry["valueFrom"] or {}
        if "fieldRef" in source:
            return self._field(source["fieldRef"].get("fieldPath", ""))
        if "resourceFieldRef" in source:
            return self._resource(source["resourceFieldRef"], container)
        if "configMapKeyRef" in source:
            return self._key("ConfigMap", source["configMapKeyRef"])
        if "secretKeyRef" in source:
            return self._key("Secret", source["secretKeyRef"])
        return ""

    def _field(self, path: str) -> str:
        meta = self.pod["metadata"]
        match = _LABEL_PATH.match(path)
        if match:
            return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
        values = {
            "metadata.name": meta["name"],
            "metadata.namespace": self.namespace,
            "metadata.uid": meta.get("uid", ""),
            "spec.nodeName": self.node,
            "spec.serviceAccountName": self.pod.get("spec", {}).get("serviceAccountName", "default"),
            "status.podIP": self.pod_ip,
            "status.podIPs": self.pod_ip,
            "status.hostIP": self.host_ip,
            "status.hostIPs": self.host_ip,
        }
        if path in ("metadata.labels", "metadata.annotations"):
            items = meta.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
        return values.get(path, "")

    @staticmethod
    def _resource(ref: dict[str, Any], container: dict[str, Any]) -> str:
        kind, _, resource = str(ref.get("resource", "")).partition(".")
        resources = container.get("resources") or {}
        value = (resources.get(kind) or {}).get(resource) or (resources.get("limits") or {}).get(resource)
        return str(value or "0")

    def _object(self, kind: str, name: str, optional: bool) -> dict[str, str] | None:
        key = "core/configmaps" if kind == "ConfigMap" else "core/secrets"
        obj = self.store.find(key, self.namespace, name)
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'{kind.lower()} "{name}" not found')
        data = dict(obj.get("data") or {})
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
            data.update(obj.get("stringData") or {})
        else:
            for k, v in (obj.get("binaryData") or {}).items():
                data[k] = base64.b64decode(v).decode(errors="replace")
        return data

    def _key(self, kind: str, ref: dict[str, Any]) -> str | None:
        name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        data = self._object(kind, name, optional)
        if data is None:
            return None
        if key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in {kind} {self.namespace}/{name}")
        return data[key]

    def _from_source(self, source: dict[str, Any]) -> dict[str, str]:
        prefix = str(source.get("prefix") or "")
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = source.get(field)
            if ref is not None:
                data = self._object(kind, ref.get("name", ""), bool(ref.get("optional")))
                return {f"{prefix}{k}": v for k, v in (data or {}).items() if "=" not in k}
        return {}
