"""``labkit lab``: the embedded cluster, then JupyterLab on the tutorials, on 127.0.0.1.

The cluster is started first (so the first notebook cell does not wait for it), then
JupyterLab replaces this process, with a token of its own and labkit's settings (no news
pop-up) in ``$LABKIT_HOME/jupyter``, so the user's own Jupyter configuration is not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path

from labkit.clusters.embedded import DEFAULT_NAME, EmbeddedCluster
from labkit.errors import UsageError
from labkit.shared.layout import labkit_home

FIRST_NOTEBOOK = "00-start.ipynb"
NO_NEWS = {"fetchNews": "false", "checkForUpdates": False}


def notebooks_folder(given: str | None) -> Path:
    """The tutorials' folder: the one given, else ./notebooks; UsageError naming what to pass."""
    folder = Path(given or "notebooks").expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(
            f"no notebooks folder at {folder}",
            "run this from a clone of labkit (it has notebooks/), or pass --notebooks DIR",
        )
    return folder


def free_port(wanted: int) -> int:
    """``wanted`` if it is free on 127.0.0.1, else any free port."""
    for port in (wanted, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise UsageError("no free port on 127.0.0.1")


def jupyter_settings(home: Path) -> Path:
    """labkit's JupyterLab settings folder (no news pop-up), under ``$LABKIT_HOME``."""
    folder = home / "jupyter" / "lab-settings"
    target = folder / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(NO_NEWS))
    return folder


def jupyter_command(folder: Path, port: int, token: str) -> list[str]:
    """The JupyterLab command line: loopback only, the tutorials as its root, 00-start first."""
    first = f"/lab/tree/{FIRST_NOTEBOOK}" if (folder / FIRST_NOTEBOOK).exists() else "/lab"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={folder}", f"--LabApp.default_url={first}"]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses root without it (CI, containers)
    return command


def cmd_lab(args: argparse.Namespace) -> int:
    """``labkit lab``: start the cluster, then JupyterLab on the tutorials (it takes this process)."""
    try:
        import jupyterlab  # noqa: F401 - only to say what is missing before starting anything
    except ImportError:
        raise UsageError("JupyterLab is not installed", "pip install jupyterlab (or: make lab)") from None
    folder = notebooks_folder(args.notebooks)
    cluster = EmbeddedCluster(DEFAULT_NAME)
    started = time.monotonic()
    print(f'Starting cluster "{cluster.name}" ...', flush=True)
    cluster.up()
    status = cluster.status()
    print(f"✓ {len(status.nodes)} nodes on {status.server} ({time.monotonic() - started:.1f} s)")
    port, token = free_port(args.port), secrets.token_urlsafe(16)
    first = f"lab/tree/{FIRST_NOTEBOOK}" if (folder / FIRST_NOTEBOOK).exists() else "lab"
    print(f"✓ JupyterLab on the tutorials in {folder}\n\n  Open: http://127.0.0.1:{port}/{first}?token={token}\n",
          flush=True)  # fmt: skip
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(jupyter_settings(labkit_home()))}
    command = jupyter_command(folder, port, token)
    os.execve(command[0], command, env)
    return 0  # not reached: JupyterLab took the process


def add_lab_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``labkit lab`` in the parser."""
    lab = sub.add_parser(
        "lab",
        help="start the embedded cluster and JupyterLab on the tutorials (notebooks/)",
        description="Start the embedded cluster, then JupyterLab on 127.0.0.1 with the tutorials; "
        "it prints the URL to open. Stop it with Ctrl-C (the cluster keeps running: "
        "labkit cluster down stops it).",
    )
    lab.add_argument("--notebooks", metavar="DIR", default=None, help="the notebooks (default: ./notebooks)")
    lab.add_argument("--port", type=int, default=8888, help="JupyterLab's port (8888, else a free one)")
    lab.set_defaults(func=cmd_lab)
