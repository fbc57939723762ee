"""The file work of build steps, without the builder's bookkeeping: where COPY puts files,
how RUN finds programs and which it refuses, the ``pip`` that Python images' RUN steps use.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from labkit.errors import BuildError
from labkit.images import catalog
from labkit.images.dockerfile import Instruction
from labkit.shared.imagestore import DiskImages, rooted_path

PACKAGE_MANAGERS = {"apt-get", "apt", "apk", "yum", "dnf", "microdnf", "zypper", "pacman"}
SCRIPT_RUNNER = """f=$(mktemp) && cat > "$f" <<'LABKIT_SCRIPT_END'
BODYLABKIT_SCRIPT_END
chmod +x "$f"; "$f"; code=$?; rm -f "$f"; exit $code"""
PIP_SCRIPT = (
    '#!/bin/sh\n# pip in a RUN step of a Python image: installs into that image\nexec python -m pip "$@"\n'
)
PIP_MODULE = """\"\"\"python -m pip in a RUN step: the builder's pip, installing into this image.\"\"\"
import os
import sys

tools = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
env = dict(os.environ)
paths = env.get("PYTHONPATH", "").split(os.pathsep)
env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p and os.path.abspath(p) != tools)
host = env["LABKIT_BUILD_PYTHON"]
os.execve(host, [host, "-m", "pip", "--python", sys.executable, *sys.argv[1:]], env)
"""


def base_creator(base: catalog.Base, root: Path) -> Callable[[], set[str]] | None:
    """The action that makes a catalog base's files in an empty root."""
    create = base.create
    if create is None:
        return None

    def action() -> set[str]:
        create(root)
        return set()

    return action


def tools_dir(store: DiskImages) -> Path:
    """The ``pip`` that RUN steps of Python images use (written once per store)."""
    tools = store.root / "tools"
    files = {
        "bin/pip": PIP_SCRIPT,
        "bin/pip3": PIP_SCRIPT,
        "python/pip/__init__.py": "",
        "python/pip/__main__.py": PIP_MODULE,
    }
    for rel, text in files.items():
        path = tools / rel
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o755 if rel.startswith("bin/") else 0o644)
    return tools


def architecture() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def duration_ns(text: str, ins: Instruction) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if not match:
        raise BuildError(
            f"Dockerfile line {ins.line}: {text!r} is not a duration",
            "write durations like 30s, 500ms or 1m",
            line=ins.line,
        )
    scale = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    return int(float(match.group(1)) * scale[match.group(2)])


def chmod_flag(ins: Instruction) -> int | None:
    value = ins.flag("chmod")
    if value is None:
        return None
    if not re.fullmatch(r"[0-7]{3,4}", value):
        raise BuildError(
            f"Dockerfile line {ins.line}: --chmod={value}: labkit's builder takes octal modes",
            "write --chmod=755 or --chmod=0644",
            line=ins.line,
        )
    return int(value, 8)


def check_many(ins: Instruction, sources: int, dest: str) -> None:
    if sources > 1 and not dest.endswith("/"):
        raise BuildError(
            f"Dockerfile line {ins.line}: {ins.keyword} with more than one source needs a destination "
            f"directory that ends with /, not {dest}",
            f"write {dest}/",
            line=ins.line,
        )


def target_path(root: Path, workdir: str, dest: str, name: str, into_dir: bool) -> Path:
    """Where a copied path goes: ``dest`` (relative to ``workdir``) itself or, for a directory
    destination, ``dest/name``."""
    absolute = posixpath.normpath(posixpath.join(workdir, dest))
    target = root / absolute.lstrip("/")
    if into_dir or dest.endswith("/") or target.is_dir():
        return target / name if name else target
    return target


def place(src: Path, target: Path, root: Path, mode: int | None) -> str:
    """Copy one file or link to ``target``; its path relative to the root."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    elif target.is_dir() and (src.is_symlink() or not src.is_dir()):
        shutil.rmtree(target)
    if src.is_symlink():
        os.symlink(os.readlink(src), target)
    elif src.is_dir():
        target.mkdir(exist_ok=True)
    else:
        shutil.copy2(src, target)
        if mode is not None:
            os.chmod(target, mode)
    return str(target.relative_to(root))


def is_archive(path: Path) -> bool:
    return path.suffix in (".tar", ".gz", ".tgz", ".bz2", ".xz") and tarfile.is_tarfile(path)


def extract(archive: Path, target: Path) -> set[str]:
    """ADD of a local tar archive: unpack it (safely) into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")
        else:  # Python < 3.12 without the backported filters
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in member.name.split("/"):
                    raise BuildError(
                        f"ADD {archive.name}: {member.name} would land outside {target}", "fix the archive"
                    )
            tar.extractall(target)
    return set()


def run_path(root: Path, path: str, tools: Path | None) -> str:
    """PATH for a RUN step: the image's bin directories, labkit's pip for Python images, then
    this machine's."""
    rooted = rooted_path(root, path).split(":")
    inside = [d for d in rooted if d.startswith(str(root))]
    outside = rooted[len(inside) :]
    return ":".join(inside + ([str(tools / "bin")] if tools else []) + outside)


def which(program: str, root: Path, path: str) -> str | None:
    if "/" in program:
        inside = root / program.lstrip("/")
        for candidate in ([inside] if program.startswith("/") else []) + [Path(program)]:
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        return None
    return shutil.which(program, path=path)


def refuse_package_managers(ins: Instruction, argv: list[str]) -> None:
    script = argv[-1] if ins.json is None else " ".join(argv)
    for part in re.split(r"&&|\|\||;|\||\n", script):
        tokens = part.split()
        while tokens and (tokens[0] in ("sudo", "env") or "=" in tokens[0]):
            tokens = tokens[1:]
        if tokens and tokens[0] in PACKAGE_MANAGERS:
            raise BuildError(
                f"Dockerfile line {ins.line}: {ins.original}: {tokens[0]} needs the distribution's own "
                "files, and labkit's builder runs RUN with this machine's programs",
                "build this Dockerfile with the Docker Engine; for Python packages, use pip "
                "(RUN pip install -r requirements.txt) on a python base",
                line=ins.line,
            )
