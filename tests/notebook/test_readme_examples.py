"""The README's Python examples, run as its reader would: in a real IPython shell, in order.

The examples use a Service "web" (in ``default`` and in ``team-a``), which the fixture makes
first, and the default ``LABKIT_HOME`` (``~/.labkit``), which stands for this test's own home.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from tests.conftest import ROOT, labkit

WEB = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "web", "image": "labkit/echo", "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
            }]},
        },
    },
}  # fmt: skip
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}  # fmt: skip


def readme_python_blocks() -> list[str]:
    """Every ```python block of README.md, in order."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InteractiveShell, Path]]:
    """A real IPython shell on a home of its own, with "web" in default and in team-a."""
    home = tmp_path_factory.mktemp("labkit-readme")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_HOME", str(home))
        patch.delenv("LABKIT_TARGET", raising=False)
        from labkit import kernel

        lab = kernel.connect()
        for namespace in ("team-a", "default"):
            lab.use(namespace)
            lab.apply_objects([WEB, SERVICE])
        yield InteractiveShell.instance(), home
    labkit("cluster", "down", "--delete", home=home, check=False)


def test_the_readme_has_the_examples_this_test_runs() -> None:
    blocks = readme_python_blocks()
    assert len(blocks) >= 4, blocks
    assert "%load_ext labkit" in blocks[0]


def test_every_python_example_of_the_readme_runs(shell: tuple[InteractiveShell, Path]) -> None:
    ip, home = shell
    shown = []
    for block in readme_python_blocks():
        cell = textwrap.dedent(block).replace("~/.labkit", str(home))
        with capture_output() as captured:
            result = ip.run_cell(cell)
        text = captured.stdout + captured.stderr
        assert result.success, f"this README example failed:\n{block}\n---\n{text}"
        assert "Traceback" not in text, text
        shown.append(text)
    # what the examples promise a reader
    assert "300 requests to service/web (via service, round-robin): 3 replicas answered, 0 errors" in shown[1]
    assert "PodsPerNode(namespace='team-a')" in shown[2] or "RequestDistribution(service='web'" in shown[2]
    summary = ip.user_ns["result"].summary()
    assert sorted(summary["requests"]) == [100, 100, 100]  # round robin over 3 replicas, exactly
    for name in ("pods_per_node", "request_distribution"):
        assert hasattr(ip.user_ns["lab"], name)
