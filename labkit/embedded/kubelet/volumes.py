"""Pod volumes as the kubelet makes them: directories of the pod, mounted into its containers.

Each volume of a pod is a directory ``<pod dir>/volumes/<name>`` that lives as long as the pod
(an ``emptyDir`` survives container restarts, as upstream's). ``configMap``, ``secret``,
``downwardAPI`` and ``projected`` volumes are written from the objects they name (``items``
pick keys and paths, ``defaultMode``/``mode`` set permissions), and written again when those
objects change, as upstream's kubelet syncs them (a ``subPath`` mount keeps its first copy,
as upstream's does). A pod whose service account token is mounted gets
``/var/run/secrets/kubernetes.io/serviceaccount`` with ``token``, ``ca.crt`` and ``namespace``.
A missing ConfigMap or Secret is a :class:`~labkit.embedded.kubelet.env.ConfigError`, unless
``optional``.
"""

from __future__ import annotations

import base64
import os
import posixpath
import shutil
from pathlib import Path
from typing import Any

from labkit.embedded.kubelet.env import ConfigError
from labkit.embedded.store import Store
from labkit.sandbox.isolation import give_to
from labkit.sandbox.view import Mount

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_MODE = 0o644
UNSUPPORTED = ("persistentVolumeClaim", "hostPath", "nfs", "csi", "ephemeral", "iscsi", "image")


class PodVolumes:
    """The volumes of one pod, on disk."""

    def __init__(
        self,
        store: Store,
        pod: dict[str, Any],
        directory: Path,
        token: str,
        ca: str,
        owner: int | None = None,
    ) -> None:
        self.store = store
        self.owner = owner  # the uid containers run as, when it is not the kubelet's own
        self.pod = pod
        self.namespace = str(pod["metadata"].get("namespace") or "default")
        self.directory = directory / "volumes"
        self.token = token
        self.ca = ca
        self._written: dict[str, str] = {}  # volume name -> the resourceVersions it was written from

    def mounts(self, container: dict[str, Any]) -> list[Mount]:
        """Write the pod's volumes (where their sources changed) and the mounts of ``container``."""
        spec = self.pod.get("spec") or {}
        volumes = {str(v.get("name")): v for v in spec.get("volumes") or []}
        for volume in volumes.values():
            self._write(volume)
        out: list[Mount] = []
        for mount in container.get("volumeMounts") or []:
            name = str(mount.get("name"))
            if name not in volumes:
                continue
            source = self.directory / name
            sub = str(mount.get("subPath") or "")
            if sub:
                source = self._sub_path(source, sub, volumes[name], container, len(out))
            target = posixpath.normpath("/" + str(mount.get("mountPath") or "/").lstrip("/"))
            out.append(Mount(source, target, writable=not mount.get("readOnly") and _writable(volumes[name])))
        if spec.get("automountServiceAccountToken") is not False and not _has_mount(out, SERVICE_ACCOUNT_DIR):
            out.append(Mount(self._service_account(), SERVICE_ACCOUNT_DIR))
        return out

    def _sub_path(
        self, volume_dir: Path, sub: str, volume: dict[str, Any], container: dict[str, Any], index: int
    ) -> Path:
        """The source of a ``subPath`` mount: a path that stays inside its volume (a symlink a
        container left there must not lead to the host), copied for written volumes, so that
        the container keeps what it started with, as upstream."""
        source = volume_dir / sub.strip("/")
        real, inside = os.path.realpath(source), os.path.realpath(volume_dir)
        if ".." in sub.split("/") or (real != inside and not real.startswith(inside + os.sep)):
            raise ConfigError(f'subPath "{sub}" leads outside its volume "{volume.get("name")}"')
        if _writable(volume):
            if not source.exists():
                source.mkdir(parents=True)
            return source
        copy = self.directory.parent / "subpaths" / f"{container.get('name')}-{index}"
        if copy.is_dir() and not copy.is_symlink():
            shutil.rmtree(copy)
        elif copy.exists() or copy.is_symlink():
            copy.unlink()
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, copy, symlinks=True)
        elif source.exists():
            shutil.copy2(source, copy)
        else:
            copy.mkdir()
        if self.owner is not None:
            give_to(copy, self.owner)
        return copy

    def refresh(self) -> None:
        """Write again the volumes whose ConfigMaps or Secrets changed."""
        for volume in (self.pod.get("spec") or {}).get("volumes") or []:
            self._write(volume)

    # -- writing -------------------------------------------------------------------------

    def _write(self, volume: dict[str, Any]) -> None:
        name = str(volume.get("name"))
        target = self.directory / name
        for kind in UNSUPPORTED:
            if kind in volume:
                raise ConfigError(
                    f'volume "{name}": {kind} volumes are not supported by the embedded cluster '
                    "(use emptyDir, configMap, secret, downwardAPI or projected)"
                )
        if "configMap" in volume or "secret" in volume or "downwardAPI" in volume or "projected" in volume:
            files, version = self._files(volume)
            if self._written.get(name) == version and target.exists():
                return
            _replace(target, files, self.owner)
            self._written[name] = version
        else:  # emptyDir, and anything else that starts empty
            target.mkdir(parents=True, exist_ok=True)

    def _files(self, volume: dict[str, Any]) -> tuple[dict[str, tuple[bytes, int]], str]:
        """The files of a configMap/secret/downwardAPI/projected volume and a version tag."""
        files: dict[str, tuple[bytes, int]] = {}
        versions: list[str] = []
        if "projected" in volume:
            projected = volume["projected"] or {}
            mode = int(projected.get("defaultMode") or DEFAULT_MODE)
            for source in projected.get("sources") or []:
                if "serviceAccountToken" in source:
                    path = str((source["serviceAccountToken"] or {}).get("path") or "token")
                    files[path] = (self.token.encode(), mode)
                for kind in ("configMap", "secret", "downwardAPI"):
                    if kind in source:
                        more, version = self._source(kind, source[kind] or {}, mode)
                        files.update(more)
                        versions.append(version)
        else:
            kind = next(k for k in ("configMap", "secret", "downwardAPI") if k in volume)
            source = volume[kind] or {}
            more, version = self._source(kind, source, int(source.get("defaultMode") or DEFAULT_MODE))
            files.update(more)
            versions.append(version)
        return files, "|".join(versions)

    def _source(
        self, kind: str, source: dict[str, Any], mode: int
    ) -> tuple[dict[str, tuple[bytes, int]], str]:
        if kind == "downwardAPI":
            out = {}
            for item in source.get("items") or []:
                value = self._field(str((item.get("fieldRef") or {}).get("fieldPath") or ""))
                out[str(item["path"])] = (value.encode(), int(item.get("mode") or mode))
            meta = self.pod["metadata"]
            return out, "pod:" + str(meta.get("resourceVersion", ""))
        name = str(source.get("name") or (source.get("secretName") if kind == "secret" else "") or "")
        if kind == "secret":
            name = str(source.get("secretName") or source.get("name") or "")
        key = "core/configmaps" if kind == "configMap" else "core/secrets"
        obj = self.store.find(key, self.namespace, name)
        label = "configmap" if kind == "configMap" else "secret"
        if obj is None:
            if source.get("optional"):
                return {}, f"{label}:{name}:absent"
            raise ConfigError(f'{label} "{name}" not found')
        data = _data(obj, kind)
        items = source.get("items")
        out = {}
        if items:
            for item in items:
                k = str(item.get("key"))
                if k not in data:
                    if source.get("optional"):
                        continue
                    where = f"{label.capitalize()} {self.namespace}/{name}"
                    raise ConfigError(f"couldn't find key {k} in {where}")
                out[str(item.get("path") or k)] = (data[k], int(item.get("mode") or mode))
        else:
            out = {k: (v, mode) for k, v in data.items()}
        return out, f"{label}:{name}:{obj['metadata'].get('resourceVersion', '')}"

    def _field(self, path: str) -> str:
        meta = self.pod["metadata"]
        if path in ("metadata.labels", "metadata.annotations"):
            items = meta.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
        values = {
            "metadata.name": meta.get("name", ""),
            "metadata.namespace": self.namespace,
            "metadata.uid": meta.get("uid", ""),
        }
        return str(values.get(path, ""))

    def _service_account(self) -> Path:
        target = self.directory / ".serviceaccount"
        if not target.exists():
            files = {
                "token": (self.token.encode(), DEFAULT_MODE),
                "ca.crt": (self.ca.encode(), DEFAULT_MODE),
                "namespace": (self.namespace.encode(), DEFAULT_MODE),
            }
            _replace(target, files, self.owner)
        return target


def _data(obj: dict[str, Any], kind: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if kind == "secret":
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v)
        for k, v in (obj.get("stringData") or {}).items():
            out[k] = str(v).encode()
        return out
    for k, v in (obj.get("data") or {}).items():
        out[k] = str(v).encode()
    for k, v in (obj.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v)
    return out


def _writable(volume: dict[str, Any]) -> bool:
    return not any(k in volume for k in ("configMap", "secret", "downwardAPI", "projected"))


def _has_mount(mounts: list[Mount], target: str) -> bool:
    return any(m.target == target for m in mounts)


def _replace(target: Path, files: dict[str, tuple[bytes, int]], owner: int | None = None) -> None:
    """Write ``files`` into ``target``, replacing what was there (each file keeps its inode
    where it already existed, so that mounts of the directory see the change); given to
    ``owner``, the container's user, so that a mode such as 0400 reads as it does upstream."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for rel, (data, mode) in files.items():
        rel = posixpath.normpath(rel).lstrip("/")
        if rel.startswith(".."):
            continue  # validation refuses such paths; never write outside the volume
        wanted.add(rel)
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode & 0o777)
    for base, _, names in os.walk(target):
        for name in names:
            rel = os.path.relpath(os.path.join(base, name), target)
            if rel not in wanted:
                os.unlink(os.path.join(base, name))
    for base, dirs, _ in os.walk(target, topdown=False):
        for name in dirs:
            path = os.path.join(base, name)
            if not os.listdir(path):
                shutil.rmtree(path, ignore_errors=True)
    if owner is not None:
        give_to(target, owner)
