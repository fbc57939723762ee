"""Where a RUN step runs: in the build's root as ``/``, isolated like a container.

The step sees the image being built as ``/`` (so ``WORKDIR /app`` and ``RUN echo x >
/app/stamp`` mean what they say), the host's programs and libraries read-only beneath it
(:func:`labkit.sandbox.view.borrowed`), and for Python images labkit's ``pip``, which
installs into the image's own environment. It cannot write the host: as root it runs as an
unprivileged user. Unlike a pod, it keeps the host's network (``RUN pip install`` reaches the
package index, as ``docker build`` does) and its hostname.
"""

from __future__ import annotations

import sys
from pathlib import Path

from labkit.errors import BuildError
from labkit.images import catalog
from labkit.images.dockerfile import Instruction
from labkit.sandbox.isolation import Isolation, IsolationError, detect
from labkit.sandbox.view import INSIDE_LABKIT, Mount, View, borrowed

TOOLS_INSIDE = f"{INSIDE_LABKIT}/tools"


def run_isolation(ins: Instruction) -> Isolation:
    """The isolation RUN steps use; a :class:`BuildError` naming the line when there is none."""
    try:
        return detect()
    except IsolationError as e:
        raise BuildError(
            f"Dockerfile line {ins.line}: {ins.original}: cannot run the step isolated: {e}",
            "install one of them, or build with the Docker Engine",
            line=ins.line,
        ) from None


def run_view(
    root: Path, workdir: str, env: dict[str, str], tools: Path | None
) -> tuple[View, dict[str, str]]:
    """The view and environment of a RUN step in the build root ``root``."""
    mounts, links = borrowed(root)
    run_env = dict(env)
    path = env.get("PATH") or catalog.DEFAULT_PATH
    if tools is not None:
        venv = Path(sys.prefix)  # labkit's own environment: the pip that installs into the image
        mounts += [Mount(tools, TOOLS_INSIDE), Mount(venv, str(venv))]
        path = f"{TOOLS_INSIDE}/bin:{path}"
        run_env["LABKIT_BUILD_PYTHON"] = sys.executable
        run_env["PYTHONPATH"] = ":".join(p for p in (f"{TOOLS_INSIDE}/python", env.get("PYTHONPATH")) if p)
        run_env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        run_env["PIP_NO_CACHE_DIR"] = "1"
    run_env["PATH"] = path
    run_env.setdefault("HOME", "/root")
    return View(root, workdir or "/", tuple(mounts), None, tuple(links)), run_env
