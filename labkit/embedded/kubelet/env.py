"""A container's environment and command line, worked out as kubelet does it.

The environment is the image's, then labkit's own (``HOSTNAME``, ``POD_IP`` and ``PORT``),
then ``envFrom`` sources, then ``env`` entries, later ones winning. Values may come from
ConfigMaps, Secrets and the downward API; ``$(VAR)`` references in values, commands and args
are expanded from the variables the pod spec defines. A missing ConfigMap, Secret or key is
a :class:`ConfigError` (CreateContainerConfigError) with upstream's message, unless optional.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from labkit.embedded.images import Image
from labkit.embedded.store import Store

_LABEL_PATH = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


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


class Environment:
    """Works out the environment of one container of one pod."""

    def __init__(self, store: Store, pod: dict[str, Any], node: str, pod_ip: str, host_ip: str) -> None:
        self.store = store
        self.pod = pod
        self.namespace = pod["metadata"].get("namespace", "default")
        self.node = node
        self.pod_ip = pod_ip
        self.host_ip = host_ip

    def hostname(self) -> str:
        """The pod's host name: ``spec.hostname`` or its name."""
        return str(self.pod.get("spec", {}).get("hostname") or self.pod["metadata"]["name"])

    def build(
        self, container: dict[str, Any], image: Image, port: int
    ) -> tuple[dict[str, str], tuple[str, ...]]:
        """The environment and the command line (entrypoint and cmd, overridden by the pod's
        command and args, expanded) of ``container``; raises :class:`ConfigError`."""
        own: dict[str, str] = {"HOSTNAME": self.hostname(), "POD_IP": self.pod_ip, "PORT": str(port)}
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
