"""``labkit lab`` as a learner runs it: the cluster, then JupyterLab on the tutorials, on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, labkit


def test_lab_starts_the_cluster_and_jupyterlab_on_the_tutorials(tmp_path: Path) -> None:
    env = {**os.environ, "LABKIT_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    lab = subprocess.Popen([sys.executable, "-m", "labkit", "lab", "--port", "0"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)  # fmt: skip
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            line = lab.stdout.readline() if lab.stdout else ""
            if not line and lab.poll() is not None:
                break
            lines.append(line)
            url = re.search(r"Open: (http://127\.0\.0\.1:(\d+)/lab/tree/00-start\.ipynb\?token=(\S+))", line)
        assert url is not None, "".join(lines)
        assert any(re.match(r"✓ 3 nodes on https://127\.0\.0\.1:\d+", line) for line in lines), lines
        port, token = url.group(2), url.group(3)
        contents = None
        while time.monotonic() < deadline:
            try:
                api = f"http://127.0.0.1:{port}/api/contents?token={token}"
                with urllib.request.urlopen(api, timeout=5) as answer:
                    contents = json.load(answer)
                break
            except OSError:
                time.sleep(0.3)
        assert contents is not None, "JupyterLab never answered"
        names = {item["name"] for item in contents["content"]}
        assert {"00-start.ipynb", "04-microservices.ipynb", "apps"} <= names, names
        with urllib.request.urlopen(url.group(1), timeout=10) as page:
            assert page.status == 200 and b"JupyterLab" in page.read()
        forbidden = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents")  # no token
        try:
            urllib.request.urlopen(forbidden, timeout=5)
            raise AssertionError("JupyterLab answered without its token")
        except urllib.error.HTTPError as err:
            assert err.code == 403
        status = labkit("cluster", "status", home=tmp_path, check=False)
        assert status.returncode == 0 and "state:      running" in status.stdout
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(20)
        labkit("cluster", "down", "--delete", home=tmp_path, check=False)


def test_lab_without_notebooks_says_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "LABKIT_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "labkit", "lab", "--notebooks", str(tmp_path / "nope")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert f"error: no notebooks folder at {tmp_path / 'nope'}" in done.stderr
    assert "hint: run this from a clone of labkit (it has notebooks/), or pass --notebooks DIR" in done.stderr
    assert not (tmp_path / "clusters").exists()  # nothing was started


def test_demo_runs_the_workshops_core_in_a_terminal_and_cleans_up(tmp_path: Path) -> None:
    try:
        done = labkit("demo", "--requests", "60", home=tmp_path, check=False, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "deployment.apps/demo-posts created" in out and "service/demo-posts created" in out
        table = out.split("pods per node:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert table[0].split() == ["NODE", "CONDITION", "PODS", "NAMES"]
        assert sum(int(line.split()[2]) for line in table[1:]) == 2, table  # two replicas placed
        headline = ("60 requests to service/demo-posts (via service, round-robin): "
                    "2 replicas answered, 0 errors")
        assert headline in out
        leftover = labkit("cluster", "status", home=tmp_path)
        assert leftover.returncode == 0
        kubeconfig = tmp_path / "clusters" / "labkit" / "kubeconfig"
        kubectl = str(Path(sys.executable).parent / "kubectl")
        command = [kubectl, "--kubeconfig", str(kubeconfig), "get", "deployments,services", "-o", "name"]
        gone = subprocess.run(command, capture_output=True, text=True)
        assert "demo-posts" not in gone.stdout, gone.stdout  # the demo deleted what it made
    finally:
        labkit("cluster", "down", "--delete", home=tmp_path, check=False)
