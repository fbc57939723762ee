"""Both widgets in a real browser: JupyterLab on 127.0.0.1, Debian's chromium driven by Playwright.

The test writes a notebook that connects to an embedded cluster of its own, opens it in
JupyterLab, runs every cell, and reads the widgets from the page: the node and pod counts,
the request bars, and a click on "delete pod" that changes the picture. Screenshots of both
widgets go to ``$LABKIT_ARTIFACTS`` (default ``.labkit-test/artifacts``).

Without chromium (``apt-get install chromium``) the test skips, except under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT, Cluster, labkit
from tests.embedded.conftest import FAST, start_tuned

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("LABKIT_ARTIFACTS", ROOT / ".labkit-test" / "artifacts"))
TOKEN = "labkit-browser-test"

CELLS = [
    "import labkit\nlab = labkit.connect('embedded')\nlab.use('browser')",
    """lab.apply('''
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: web, image: labkit/echo, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
''')""",
    "lab.pods_per_node()",
    "lab.request_distribution('web', 200, mode='round-robin')",
]


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = "no chromium: apt-get install chromium (never a downloaded browser)"
        if IN_CI:
            pytest.fail(f"{reason}\n(CI=true: the browser test must run; .ci/run installs chromium)")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _notebook(path: Path) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c}
             for c in CELLS]  # fmt: skip
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def cluster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """An embedded cluster of its own (the notebook's kernel finds it through LABKIT_HOME)."""
    cluster = start_tuned(tmp_path_factory.mktemp("labkit-browser"), "labkit", *FAST)
    yield cluster
    labkit("cluster", "down", "--name", cluster.name, "--delete", home=cluster.home, check=False)


@pytest.fixture(scope="module")
def jupyterlab(cluster_home: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 over a folder with the test notebook; its base URL."""
    _need_chromium()
    work = tmp_path_factory.mktemp("lab-root")
    _notebook(work / "widgets.ipynb")
    jupyter_dirs = tmp_path_factory.mktemp("jupyter")
    settings = jupyter_dirs / "data" / "lab" / "settings"
    settings.mkdir(parents=True)
    (settings / "overrides.json").write_text(json.dumps(
        {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
    ))  # fmt: skip
    port = _free_port()
    env = {**os.environ, "LABKIT_HOME": str(cluster_home.home), "PYTHONPATH": str(ROOT),
           "JUPYTER_CONFIG_DIR": str(jupyter_dirs / "config"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTER_RUNTIME_DIR": str(jupyter_dirs / "runtime")}  # fmt: skip
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", f"--IdentityProvider.token={TOKEN}",
               "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
               f"--ServerApp.root_dir={work}"]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (jupyter_dirs / "lab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2).read()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start:\n{(jupyter_dirs / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.3)
    yield base
    server.terminate()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_both_widgets_render_and_a_click_changes_the_picture(jupyterlab: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"]  # fmt: skip
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.on("console", lambda m: print("console:", m.type, m.text))
            page.goto(f"{jupyterlab}/lab/tree/widgets.ipynb?token={TOKEN}&reset")
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            app = "window.jupyterapp"  # exposed by --LabApp.expose_app_in_browser
            page.wait_for_function(f"{app} && {app}.shell.currentWidget", timeout=60_000)
            page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.ready; }")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            picture = page.locator(".labkit-ppn")
            expect(picture.locator(".labkit-node")).to_have_count(3, timeout=90_000)
            expect(picture.locator(".labkit-pod[data-state='running']")).to_have_count(2, timeout=60_000)
            bars = page.locator(".labkit-distribution")
            expect(bars).to_have_attribute("data-done", "true", timeout=60_000)
            expect(bars.locator(".labkit-replica")).to_have_count(2)
            rows = bars.locator(".labkit-replica").all()
            assert sum(int(r.get_attribute("data-requests") or 0) for r in rows) == 200

            widget = page.locator(".jp-OutputArea-output").filter(has=picture)
            bar_widget = page.locator(".jp-OutputArea-output").filter(has=bars)
            widget.screenshot(path=str(ARTIFACTS / "pods-per-node.png"))
            bar_widget.screenshot(path=str(ARTIFACTS / "request-distribution.png"))

            before = {t.get_attribute("data-pod") for t in picture.locator(".labkit-pod").all()}
            chosen = widget.locator("select").first.input_value()
            assert chosen in before
            widget.get_by_role("button", name="delete pod").click()
            expect(picture.locator(f".labkit-pod[data-pod='{chosen}']")).to_have_count(0, timeout=30_000)
            expect(picture.locator(".labkit-pod[data-state='running']")).to_have_count(2, timeout=30_000)
            after = {t.get_attribute("data-pod") for t in picture.locator(".labkit-pod").all()}
            assert chosen not in after and after - before, (before, after)
            widget.screenshot(path=str(ARTIFACTS / "pods-per-node-after-delete.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            print(page.locator(".jp-Notebook").inner_text()[-4000:])
            raise
        finally:
            browser.close()
