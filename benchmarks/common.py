"""Shared pieces of the benchmarks: a throw-away cluster, an HTTPS client, statistics and reporting.

Every benchmark runs a real embedded cluster (``python -m labkit cluster up``) under a
temporary ``LABKIT_HOME`` and talks to it only on 127.0.0.1, with the CA and bearer token
from the cluster's kubeconfig. The cluster is deleted when the benchmark ends, even when it
fails or is stopped with SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
KUBECTL = Path(sys.executable).parent / "kubectl"
CLUSTER = "bench"
PATCH_TYPE = "application/strategic-merge-patch+json"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"


# -- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the numbers were measured on: cores, CPU model, Python and kubectl."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    return {
        "nproc": nproc,
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.platform(terse=True),
        "kubectl": kubectl_version(),
    }


def kubectl_version() -> str:
    """The client version of the virtualenv's kubectl, or "absent"."""
    if not KUBECTL.exists():
        return "absent"
    try:
        out = subprocess.run(
            [str(KUBECTL), "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        return str(json.loads(out)["clientVersion"]["gitVersion"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return "unknown"


def describe_machine(info: dict[str, str]) -> str:
    """One line describing the machine."""
    return (
        f"machine: {info['nproc']} cores (nproc), {info['cpu']}, {info['implementation']} {info['python']}, "
        f"{info['system']}, kubectl {info['kubectl']}"
    )


# -- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between the closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Count, min, p50, p90, p99, max and mean of a sample."""
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def describe(label: str, values: Sequence[float], unit: str = "ms") -> str:
    """One line: the sample's percentiles."""
    s = summary(values)
    return (
        f"{label}: n={s['n']:.0f} min={s['min']:.2f} p50={s['p50']:.2f} p90={s['p90']:.2f} "
        f"p99={s['p99']:.2f} max={s['max']:.2f} mean={s['mean']:.2f} {unit}"
    )


# -- results -------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a results table: a measured value and, when the issue sets one, its target."""

    benchmark: str
    metric: str
    value: str
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        """ "met", "MISSED" or "" when there is no target."""
        return "" if self.met is None else ("met" if self.met else "MISSED")


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    header = ("benchmark", "metric", "value", "target", "verdict")
    cells = [header, *[(r.benchmark, r.metric, r.value, r.target, r.verdict) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]

    def line(c: Sequence[str]) -> str:
        return "| " + " | ".join(text.ljust(w) for text, w in zip(c, widths, strict=True)) + " |"

    return "\n".join(
        [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *[line(c) for c in cells[1:]]]
    )


def report(rows: Sequence[Row], info: dict[str, str], json_path: Path | None, extra: dict[str, Any]) -> None:
    """Print the rows and the machine; write them (with raw figures) to ``json_path`` if given."""
    print()
    print(describe_machine(info))
    print(table(rows))
    if json_path is not None:
        json_path.write_text(
            json.dumps({"machine": info, "rows": [asdict(r) for r in rows], "extra": extra}, indent=2) + "\n"
        )


# -- command line --------------------------------------------------------------------------


def bounded_int(low: int, high: int) -> Any:
    """An argparse type: an integer in [low, high], so every run stays bounded."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def add_common_args(parser: argparse.ArgumentParser, max_seconds: int) -> None:
    """``--json`` and ``--max-seconds``, shared by every benchmark."""
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the results (and raw figures) as JSON to PATH",
    )
    parser.add_argument(
        "--max-seconds",
        type=bounded_int(10, 3600),
        default=max_seconds,
        help=f"give up after this many seconds (default: {max_seconds})",
    )


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks delete the cluster."""

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


# -- clusters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a cluster's API is and how to reach it: server URL, CA (PEM) and bearer token."""

    server: str
    ca_pem: str
    token: str

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context that trusts only the cluster's CA."""
        return ssl.create_default_context(cadata=self.ca_pem)

    def session(self, connections: int = 1, timeout: float = 30.0) -> aiohttp.ClientSession:
        """A keep-alive HTTPS client with at most ``connections`` open connections."""
        connector = aiohttp.TCPConnector(ssl=self.ssl_context(), limit=connections)
        return aiohttp.ClientSession(
            base_url=self.server,
            connector=connector,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        )


def read_kubeconfig(path: Path) -> Endpoint:
    """The server, CA and token of a labkit kubeconfig."""
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca_pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
    server = str(cluster["server"])
    if not server.startswith("https://127."):
        raise SystemExit(f"refusing to benchmark a non-loopback server: {server}")
    return Endpoint(server, ca_pem, str(config["users"][0]["user"]["token"]))


@dataclass(frozen=True)
class Home:
    """A temporary LABKIT_HOME holding one cluster."""

    path: Path
    name: str = CLUSTER

    @property
    def kubeconfig(self) -> Path:
        """The cluster's kubeconfig."""
        return self.path / "clusters" / self.name / "kubeconfig"

    def env(self) -> dict[str, str]:
        """Environment for labkit and kubectl: this home (also as HOME, so kubectl's cache is ours)."""
        return {
            **os.environ,
            "LABKIT_HOME": str(self.path),
            "HOME": str(self.path),
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }

    def labkit(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``python -m labkit cluster ARGS --name NAME``; raise with its output if it fails."""
        cmd = [PYTHON, "-m", "labkit", "cluster", *args, "--name", self.name]
        done = subprocess.run(
            cmd, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[2:])} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def kubectl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run the virtualenv's kubectl against this cluster (not checked)."""
        return subprocess.run(
            [str(KUBECTL), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def daemon_pid(self) -> int | None:
        """The daemon's pid from its pid file, if any."""
        with contextlib.suppress(OSError, ValueError):
            return int((self.path / "clusters" / self.name / "daemon.pid").read_text().strip())
        return None

    def destroy(self) -> None:
        """Stop and delete the cluster, kill its daemon if it outlived that, and remove the home."""
        pid = self.daemon_pid()
        with contextlib.suppress(Exception):
            self.labkit("down", "--delete", timeout=30)
        if pid is not None and _is_daemon(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.path, ignore_errors=True)


def _is_daemon(pid: int) -> bool:
    try:
        return b"labkit.embedded.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def new_home() -> Home:
    """A fresh, empty LABKIT_HOME under the system's temp directory."""
    return Home(Path(tempfile.mkdtemp(prefix="labkit-bench-")))


@contextlib.contextmanager
def running_cluster(nodes: int = 1) -> Iterator[tuple[Home, Endpoint]]:
    """A new cluster on a temporary home for the duration of the block; deleted afterwards."""
    home = new_home()
    try:
        home.labkit("up", "--nodes", str(nodes))
        yield home, read_kubeconfig(home.kubeconfig)
    finally:
        home.destroy()


# -- requests ------------------------------------------------------------------------------


class UnexpectedStatusError(RuntimeError):
    """The API answered with a status the benchmark did not expect."""


async def call(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    *,
    expect: int = 200,
    content_type: str = "application/json",
    accept: str = "application/json",
) -> bytes:
    """One request, reading the whole answer; raise :class:`UnexpectedStatusError` on another status."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": accept}
    if data is not None:
        headers["Content-Type"] = content_type
    async with session.request(method, path, data=data, headers=headers) as response:
        raw = await response.read()
        if response.status != expect:
            raise UnexpectedStatusError(
                f"{method} {path}: {response.status} (expected {expect}): {raw[:500]!r}"
            )
        return raw


async def create_namespace(session: aiohttp.ClientSession, name: str) -> None:
    """Create a namespace for the benchmark's objects."""
    await call(session, "POST", "/api/v1/namespaces", {"metadata": {"name": name}}, expect=201)


def realistic_pod(name: str, index: int) -> dict[str, Any]:
    """A pod like one a Deployment makes: labels, one container with ports, env and resources."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "web", "tier": "frontend", "release": "stable", "shard": str(index % 10)},
            "annotations": {"labkit.dev/bench": "true"},
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [
                        {"name": "http", "containerPort": 80, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9113, "protocol": "TCP"},
                    ],
                    "env": [
                        {"name": "MODE", "value": "production"},
                        {"name": "POD_INDEX", "value": str(index)},
                        {"name": "LOG_LEVEL", "value": "info"},
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                }
            ]
        },
    }


def configmap(name: str, index: int) -> dict[str, Any]:
    """A small ConfigMap with a label and three keys."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench", "shard": str(index % 10)}},
        "data": {"mode": "production", "index": str(index), "greeting": "hello from labkit"},
    }


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - start) * 1000
