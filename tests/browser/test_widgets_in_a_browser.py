"""Both widgets in a real browser: JupyterLab 4, Notebook 7 and Voilà on 127.0.0.1, Debian's
chromium driven by Playwright.

The test writes a notebook that connects to an embedded cluster of its own, opens it in each
frontend, runs every cell (Voilà runs them itself), and reads the widgets from the page: the
node and pod counts, the request bars, and a click on "delete pod" that changes the picture.
Screenshots of both widgets go to ``$LABKIT_ARTIFACTS`` (default ``.labkit-test/artifacts``).

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
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAST, IN_CI, ROOT, Cluster, labkit, start_tuned

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


Env = dict[str, str]
FRONTENDS = {
    # name: (module to run, its options, the notebook's path in it, how cells are run)
    "jupyterlab": ("jupyterlab", ["--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=1"],
                   "/lab/tree/widgets.ipynb?reset&", "run-all"),
    "notebook7": ("notebook", ["--JupyterNotebookApp.expose_app_in_browser=1"],
                  "/notebooks/widgets.ipynb?", "run-all"),
    "voila": ("voila", [], "/voila/render/widgets.ipynb?", "voila"),
}  # fmt: skip


@pytest.fixture(scope="module")
def jupyter_env(cluster_home: Cluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Env]:
    """A folder with the test notebook, and an environment with Jupyter's folders of its own."""
    _need_chromium()
    work = tmp_path_factory.mktemp("lab-root")
    _notebook(work / "widgets.ipynb")
    jupyter_dirs = tmp_path_factory.mktemp("jupyter")
    settings = jupyter_dirs / "settings"
    settings.mkdir(parents=True)
    (settings / "overrides.json").write_text(json.dumps(
        {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
    ))  # fmt: skip
    env = {**os.environ, "LABKIT_HOME": str(cluster_home.home), "PYTHONPATH": str(ROOT),
           "JUPYTER_CONFIG_DIR": str(jupyter_dirs / "config"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTER_RUNTIME_DIR": str(jupyter_dirs / "runtime")}  # fmt: skip
    return work, env


@pytest.fixture(params=sorted(FRONTENDS))
def frontend(request: pytest.FixtureRequest, jupyter_env: tuple[Path, Env]) -> Iterator[tuple[str, str]]:
    """One Jupyter frontend on 127.0.0.1: (its name, the notebook's URL)."""
    work, env = jupyter_env
    module, options, path, _ = FRONTENDS[request.param]
    port = _free_port()
    command = [sys.executable, "-m", module, "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={work}", *options]  # fmt: skip
    if module == "voila":
        command = [sys.executable, "-m", "voila", "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
                   f"--Voila.root_dir={work}", f"--ServerApp.token={TOKEN}"]  # fmt: skip
    elif os.geteuid() == 0:
        command.append("--allow-root")
    log_path = work / f"{request.param}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/?token={TOKEN}", timeout=2).read()
                break
            except urllib.error.HTTPError:  # it answers (Voilà has no /api/status)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"{request.param} did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
        try:
            yield request.param, f"{base}{path}token={TOKEN}"
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()


def test_both_widgets_render_and_a_click_changes_the_picture(frontend: tuple[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    name, url = frontend
    shots = ARTIFACTS / name
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"]  # fmt: skip
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(url)
            if FRONTENDS[name][3] == "run-all":
                app = "window.jupyterapp"  # exposed by expose_app_in_browser
                ready = f"{app} && {app}.shell.currentWidget && {app}.shell.currentWidget.sessionContext"
                page.wait_for_function(ready, timeout=60_000)
                page.evaluate(f"async () => {{ await {app}.shell.currentWidget.sessionContext.ready; }}")
                page.evaluate(f"() => {app}.commands.execute('notebook:run-all-cells')")
            _check(page, shots, expect)
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def _check(page: Any, shots: Path, expect: Any) -> None:
    picture = page.locator(".labkit-ppn")
    expect(picture.locator(".labkit-node")).to_have_count(3, timeout=90_000)
    expect(picture.locator(".labkit-pod[data-state='running']")).to_have_count(2, timeout=60_000)
    bars = page.locator(".labkit-distribution")
    expect(bars).to_have_attribute("data-done", "true", timeout=60_000)
    expect(bars.locator(".labkit-replica")).to_have_count(2)
    rows = bars.locator(".labkit-replica").all()
    assert sum(int(r.get_attribute("data-requests") or 0) for r in rows) == 200

    widget = page.locator(".widget-vbox").filter(has=picture).last
    widget.screenshot(path=str(shots / "pods-per-node.png"))
    bar_widget = page.locator(".widget-vbox").filter(has=bars).last
    bar_widget.screenshot(path=str(shots / "request-distribution.png"))

    before = {t.get_attribute("data-pod") for t in picture.locator(".labkit-pod").all()}
    chosen = widget.locator("select").first.input_value()
    assert chosen in before
    widget.get_by_role("button", name="delete pod").click()
    expect(picture.locator(f".labkit-pod[data-pod='{chosen}']")).to_have_count(0, timeout=30_000)
    expect(picture.locator(".labkit-pod[data-state='running']")).to_have_count(2, timeout=30_000)
    after = {t.get_attribute("data-pod") for t in picture.locator(".labkit-pod").all()}
    assert chosen not in after and after - before, (before, after)
    widget.screenshot(path=str(shots / "pods-per-node-after-delete.png"))
