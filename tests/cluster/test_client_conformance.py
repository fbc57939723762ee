"""The official kubernetes Python client's own e2e tests of exec and port-forward, run against a
fresh embedded cluster (the suite lives beside the project, in ../shared/conformance)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, Cluster

# beside the project as ../shared (the team's layout), or wherever LABKIT_CONFORMANCE_SUITE says
SUITE = Path(
    os.environ.get("LABKIT_CONFORMANCE_SUITE")
    or ROOT.parent / "shared" / "conformance" / "kubernetes-client-e2e" / "run.sh"
)
# test_portforward_http needs an nginx image, which the embedded cluster does not have
STREAMING = "test_exit_code or test_pod_apis or test_pod_exec_close_channel or test_portforward_raw"


@pytest.mark.skipif(not SUITE.exists(), reason=f"the client's e2e suite is not on this machine ({SUITE})")
def test_the_python_clients_own_exec_and_portforward_tests(spare_cluster: Callable[..., Cluster]) -> None:
    cluster = spare_cluster("conformance", 2)
    env = {
        **cluster.env(),
        "LABKIT_CONFORMANCE_VENV": str(ROOT / ".labkit-test" / "conformance-venv"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        ["bash", str(SUITE), "-k", STREAMING, "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=os.environ.get("TMPDIR", "/tmp"),
    )
    summary = done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == 0, summary
    assert "4 passed" in done.stdout, summary
