"""Export an image of labkit's store as an OCI image layout (a directory or a tar of one).

Each layer of the image becomes an uncompressed layer tar (deleted paths as ``.wh.`` whiteout
files), with the image's own root where labkit wrote its placeholder, so paths such as a
console script's ``#!/usr/local/bin/python`` read as they would in a container. The config
is the stored one with ``rootfs.diff_ids`` set to the tars' digests; ``index.json`` names
the image with the ``org.opencontainers.image.ref.name`` annotation.

The layers hold what labkit built; files that stand for this machine's programs (a Python
environment's ``bin/python`` links to the host's interpreter) are links to paths that a
real base image would have to provide.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from labkit.images.layers import PLACEHOLDER, LayerCache
from labkit.shared.imagestore import DiskImages, StoredImage

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


def export(store: DiskImages, image: StoredImage, dest: Path, fmt: str = "tar") -> Path:
    """Write ``image`` to ``dest`` as an OCI layout: a tar file (``fmt="tar"``) or a new
    directory (``fmt="dir"``). Returns ``dest``."""
    with tempfile.TemporaryDirectory(prefix="labkit-oci-") as tmp:
        layout = Path(tmp) / "layout"
        _write_layout(store, image, layout)
        if fmt == "dir":
            shutil.copytree(layout, dest)
        else:
            with tarfile.open(dest, "w") as tar:
                for path in sorted(layout.rglob("*")):
                    tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    return dest


def _write_layout(store: DiskImages, image: StoredImage, layout: Path) -> None:
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    cache = LayerCache(store)
    layers = []
    for key in image.layers:
        info = cache.find(key)
        if info is None:
            raise FileNotFoundError(f"layer {key[:12]} of {image.id[7:19]} is missing from the cache")
        data = _layer_tar(cache.dir / key / "fs", info.deleted, set(info.relocate))
        layers.append({"mediaType": LAYER, "digest": _blob(blobs, data), "size": len(data)})
    config = {k: v for k, v in image.config.items() if k != "labkit"}
    config["rootfs"] = {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": _blob(blobs, config_bytes), "size": len(config_bytes)},
        "layers": layers,
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    entry: dict[str, object] = {
        "mediaType": MANIFEST,
        "digest": _blob(blobs, manifest_bytes),
        "size": len(manifest_bytes),
    }
    if image.tags:
        entry["annotations"] = {"org.opencontainers.image.ref.name": image.tags[0]}
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}, indent=1))


def _blob(blobs: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return "sha256:" + digest


def _layer_tar(fs: Path, deleted: tuple[str, ...], relocated: set[str]) -> bytes:
    """A layer as an uncompressed tar: its files, then whiteouts for what it deleted."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(fs.rglob("*")) if fs.exists() else []:
            rel = str(path.relative_to(fs))
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isfile() and rel in relocated:
                data = path.read_bytes().replace(PLACEHOLDER, b"")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
        for rel in deleted:
            parent, name = os.path.split(rel)
            whiteout = tarfile.TarInfo(os.path.join(parent, ".wh." + name))
            tar.addfile(whiteout)
    return out.getvalue()
