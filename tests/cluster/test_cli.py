"""``labkit cluster ...`` as a user runs it; each test uses its own LABKIT_HOME, not the session's."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.support import config_map
from tests.conftest import KUBECTLS, Cluster, labkit


@pytest.fixture(scope="module")
def started(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Cluster, subprocess.CompletedProcess[str], int]]:
    """``labkit cluster up --name cli`` on a fresh home: the cluster, what ``up`` printed, and the status
    of the very first request made after ``up`` returned."""
    home = tmp_path_factory.mktemp("labkit-cli")
    result = labkit("cluster", "up", "--name", "cli", home=home)
    cdir = home / "clusters" / "cli"
    config = yaml.safe_load((cdir / "kubeconfig").read_text())
    c = Cluster(
        "cli",
        home,
        cdir / "kubeconfig",
        config["clusters"][0]["cluster"]["server"],
        config["users"][0]["user"]["token"],
        cdir / "ca.crt",
    )
    first, _, _ = c.request("GET", "/version")
    yield c, result, first
    labkit("cluster", "down", "--name", "cli", "--delete", home=home, check=False)


def _pid(c: Cluster) -> int:
    return int((c.home / "clusters" / c.name / "daemon.pid").read_text())


def _dead(pid: int, timeout: float = 5) -> bool:
    """True once the process is gone or a zombie (its parent, init, may reap it a little later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_up_returns_once_the_api_answers_and_says_how_to_use_kubectl(started) -> None:
    c, result, first = started
    assert result.returncode == 0
    assert first == 200, "the API did not answer the first request after `labkit cluster up` returned"
    assert 'Creating cluster "cli"' in result.stdout
    assert f"✓ API server on {c.server}" in result.stdout
    assert "✓ 3 nodes: cli-control-plane, cli-worker, cli-worker2" in result.stdout
    assert f"export KUBECONFIG={c.kubeconfig}\n" in result.stdout
    assert "labkit cluster down --name cli" in result.stdout
    assert c.server.startswith("https://127.0.0.1:")


@pytest.mark.parametrize("binary", sorted(KUBECTLS.values()), ids=sorted(KUBECTLS))
def test_the_printed_export_line_points_kubectl_at_the_cluster(started, binary: str) -> None:
    c, result, _ = started
    export = next(line.strip() for line in result.stdout.splitlines() if "export KUBECONFIG=" in line)
    kubeconfig = export.split("=", 1)[1]
    env = {**os.environ, "KUBECONFIG": kubeconfig, "HOME": str(c.home)}
    out = subprocess.run(
        [binary, "get", "nodes", "-o", "name"], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["node/cli-control-plane", "node/cli-worker", "node/cli-worker2"]


def test_up_on_a_running_cluster_says_so_and_changes_nothing(started) -> None:
    c, _, _ = started
    pid, kubeconfig = _pid(c), c.kubeconfig.read_text()
    again = labkit("cluster", "up", "--name", "cli", "--nodes", "5", home=c.home)
    assert again.returncode == 0
    assert f'Cluster "cli" is already running on {c.server} (pid {pid}); nothing changed' in again.stdout
    assert "--nodes is ignored for a running cluster" in again.stdout
    assert f"export KUBECONFIG={c.kubeconfig}" in again.stdout
    assert _pid(c) == pid
    os.kill(pid, 0)  # the same daemon still runs
    assert c.kubeconfig.read_text() == kubeconfig  # same port, same token
    status, nodes, _ = c.request("GET", "/api/v1/nodes")
    assert status == 200 and len(nodes["items"]) == 3


def test_status_of_a_running_cluster(started) -> None:
    c, _, _ = started
    result = labkit("cluster", "status", "--name", "cli", home=c.home, check=False)
    assert result.returncode == 0
    assert "state:      running" in result.stdout
    assert f"pid:        {_pid(c)}" in result.stdout
    assert f"server:     {c.server}" in result.stdout
    assert "nodes:      3 (cli-control-plane, cli-worker, cli-worker2)" in result.stdout
    assert f"kubeconfig: {c.kubeconfig}" in result.stdout


def test_status_of_an_absent_cluster_exits_3(started) -> None:
    c, _, _ = started
    result = labkit("cluster", "status", "--name", "nothere", home=c.home, check=False)
    assert result.returncode == 3
    assert "state:      absent" in result.stdout
    assert "start it with: labkit cluster up" in result.stdout
    assert not (c.home / "clusters" / "nothere").exists()


def test_kubeconfig_prints_the_file_or_its_path(started) -> None:
    c, _, _ = started
    path = labkit("cluster", "kubeconfig", "--name", "cli", "--path", home=c.home)
    assert path.stdout == f"{c.kubeconfig}\n"
    content = labkit("cluster", "kubeconfig", "--name", "cli", home=c.home)
    config = yaml.safe_load(content.stdout)
    assert config["clusters"][0]["cluster"]["server"] == c.server
    assert config["current-context"] == "labkit-cli"
    assert oct(c.kubeconfig.stat().st_mode & 0o777) == "0o600"  # it holds the token


def test_kubeconfig_of_a_cluster_never_started_is_a_clear_error(started) -> None:
    c, _, _ = started
    result = labkit("cluster", "kubeconfig", "--name", "nothere", "--path", home=c.home, check=False)
    assert result.returncode == 1
    assert (
        result.stderr == 'error: cluster "nothere" has no kubeconfig yet\nhint: start it: labkit cluster up\n'
    )
    assert result.stdout == ""


def test_down_keeps_objects_for_the_next_up_and_down_delete_removes_everything(
    spare_cluster: Callable[..., Cluster],
) -> None:
    c = spare_cluster("keep")
    status, created, _ = c.request("POST", "/api/v1/namespaces/default/configmaps", config_map("kept", a="1"))
    assert status == 201, created
    pid = _pid(c)

    down = labkit("cluster", "down", "--name", "keep", home=c.home)
    assert down.stdout == 'Cluster "keep" stopped; its objects are kept for the next `labkit cluster up`.\n'
    assert _dead(pid)
    stopped = labkit("cluster", "status", "--name", "keep", home=c.home, check=False)
    assert stopped.returncode == 3 and "state:      stopped" in stopped.stdout
    assert "nothing to stop" in labkit("cluster", "down", "--name", "keep", home=c.home).stdout

    up = labkit("cluster", "up", "--name", "keep", home=c.home)
    assert 'Starting cluster "keep"' in up.stdout
    config = yaml.safe_load(c.kubeconfig.read_text())
    c.server = config["clusters"][0]["cluster"]["server"]
    status, kept, _ = c.request("GET", "/api/v1/namespaces/default/configmaps/kept")
    assert status == 200, kept
    assert kept["data"] == {"a": "1"}
    assert kept["metadata"]["uid"] == created["metadata"]["uid"]
    assert kept["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    pid = _pid(c)
    gone = labkit("cluster", "down", "--name", "keep", "--delete", home=c.home)
    assert gone.stdout == 'Cluster "keep" stopped and deleted.\n'
    assert not (c.home / "clusters" / "keep").exists()
    assert _dead(pid)
    absent = labkit("cluster", "status", "--name", "keep", home=c.home, check=False)
    assert absent.returncode == 3 and "state:      absent" in absent.stdout
    again = labkit("cluster", "down", "--name", "keep", "--delete", home=c.home)
    assert again.stdout == 'Cluster "keep" does not exist; nothing to delete.\n'


def test_nodes_5_gives_five_nodes_named_like_kind(tmp_path: Path) -> None:
    try:
        up = labkit("cluster", "up", "--name", "five", "--nodes", "5", home=tmp_path)
        names = ["five-control-plane", "five-worker", "five-worker2", "five-worker3", "five-worker4"]
        assert f"✓ 5 nodes: {', '.join(names)}" in up.stdout
        status = labkit("cluster", "status", "--name", "five", home=tmp_path)
        assert f"nodes:      5 ({', '.join(names)})" in status.stdout
    finally:
        labkit("cluster", "down", "--name", "five", "--delete", home=tmp_path, check=False)


def test_labkit_help_explains_the_commands(tmp_path: Path) -> None:
    result = labkit("--help", home=tmp_path)
    assert result.returncode == 0
    for text in (
        "cluster",
        "labkit cluster up",
        "export KUBECONFIG=$(labkit cluster kubeconfig --path)",
        "labkit cluster down --delete",
        "LABKIT_HOME",
    ):
        assert text in result.stdout
    bare = labkit(home=tmp_path, check=False)
    assert "labkit cluster up" in bare.stdout  # no command: the help, not a traceback
    assert "Traceback" not in bare.stderr


def test_cluster_up_help_lists_its_options(tmp_path: Path) -> None:
    result = labkit("cluster", "up", "--help", home=tmp_path)
    assert result.returncode == 0
    for text in ("--name", "--nodes", "--timeout", "returns once the API answers", "default: 3"):
        assert text in result.stdout
    assert not (tmp_path / "clusters").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--name", "Bad_Name"],
            1,
            "error: invalid cluster name 'Bad_Name': use 1-40 lower-case letters, digits and '-'",
        ),
        (["--name=-x"], 1, "error: invalid cluster name '-x'"),
        (["--name", "a" * 41], 1, "error: invalid cluster name"),
        (["--nodes", "0"], 1, "error: --nodes must be between 1 and 100, not 0"),
        (["--nodes", "many"], 2, "argument --nodes: invalid int value: 'many'"),
    ],
)
def test_bad_arguments_are_clear_errors_without_a_traceback(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = labkit("cluster", "up", *args, home=tmp_path, check=False)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("clusters/*/daemon.pid"))  # nothing was started
