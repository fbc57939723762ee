"""The widgets without a cluster: what their HTML, PNG and text show for given models."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from labkit.kube.models import NodeInfo, Nodes, PodInfo, Pods, RequestSample
from labkit.widgets.distribution_view import Tally
from labkit.widgets.palette import STATE_COLOURS
from labkit.widgets.pods_per_node import PodsPerNode
from labkit.widgets.request_distribution import RequestDistribution

NODES = Nodes([
    NodeInfo("lab-control-plane", "Ready", "control-plane", 0, 110, True, False),
    NodeInfo("lab-worker", "Ready", "<none>", 3, 110, True, False),
    NodeInfo("lab-worker2", "NotReady", "<none>", 1, 110, False, False, stopped=True),
    NodeInfo("lab-worker3", "Ready,SchedulingDisabled", "<none>", 0, 110, True, True),
])  # fmt: skip


def pod(name: str, node: str | None, status: str = "Running", ready: str = "1/1",
        owner: str | None = "Deployment/web", phase: str = "Running") -> PodInfo:  # fmt: skip
    return PodInfo(name, "default", status, phase, ready, 0, node, "10.0.0.9" if node else None, "1m", owner)


PODS = Pods([
    pod("web-a", "lab-worker"), pod("web-b", "lab-worker", ready="0/1"),
    pod("db-0", "lab-worker", "CrashLoopBackOff", "0/1", "StatefulSet/db"),
    pod("web-c", "lab-worker2", "Terminating"),
    pod("big", None, "Pending", "0/1", None, "Pending"), pod("big2", None, "Pending", "0/1", None, "Pending"),
])  # fmt: skip


def tiles_per_column(png: bytes) -> list[int]:
    """Count the pod tiles in a PNG: squares filled with a state colour, left to right."""
    from matplotlib import image

    pixels = (image.imread(io.BytesIO(png))[:, :, :3] * 255).round().astype(int)
    colours = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in STATE_COLOURS.values()]
    mask = np.zeros(pixels.shape[:2], dtype=bool)
    for colour in colours:
        mask |= (np.abs(pixels - np.array(colour)) <= 2).all(axis=2)
    seen = np.zeros_like(mask)
    centres = []
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        stack, points = [(y, x)], []
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            points.append((cy, cx))
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        ys, xs = zip(*points, strict=True)
        height, width = max(ys) - min(ys) + 1, max(xs) - min(xs) + 1
        filled = len(points) / (height * width)
        if height >= 8 and 0.7 <= width / height <= 1.4 and filled > 0.5:  # a tile, not a box's outline
            centres.append(sum(xs) / len(xs))
    return _columns(sorted(centres))


def _columns(xs: list[float]) -> list[int]:
    """Group tile centres into node columns (a column's tiles lie within one box width)."""
    groups: list[list[float]] = []
    for x in xs:
        if groups and x - groups[-1][0] < 125:  # a box holds 4 tiles across (100 px), boxes are 156 px apart
            groups[-1].append(x)
        else:
            groups.append([x])
    return [len(g) for g in groups]


def test_the_picture_places_each_pod_in_its_nodes_box() -> None:
    widget = PodsPerNode(NODES, PODS, namespace="default")
    expected = {"lab-control-plane": 0, "lab-worker": 3, "lab-worker2": 1, "lab-worker3": 0, "": 2}
    assert widget.counts == expected
    html = widget.view.value
    assert html.count('class="labkit-node"') == 4 and html.count('class="labkit-pod"') == 6
    assert 'data-node="lab-worker2" data-condition="stopped"' in html
    assert 'data-node="lab-worker3" data-condition="cordoned"' in html
    states = {p.name: p.state for p in PODS}
    assert states == {"web-a": "running", "web-b": "not-ready", "db-0": "crash-looping",
                      "web-c": "terminating", "big": "pending", "big2": "pending"}  # fmt: skip
    assert 'data-pod="db-0" data-state="crash-looping" data-owner="StatefulSet/db"' in html
    assert 'class="labkit-unscheduled" data-pods="2"' in html  # pending pods that fit nowhere, apart
    assert "restarts 0" in html and "IP 10.0.0.9" in html  # on hover


def test_the_png_shows_the_same_counts_as_the_widget() -> None:
    widget = PodsPerNode(NODES, PODS, namespace="default")
    # columns with tiles, left to right: lab-worker (3), lab-worker2 (1), on no node (2)
    assert tiles_per_column(widget.png()) == [3, 1, 2]
    widget.show(NODES, Pods([pod(f"web-{i}", "lab-worker") for i in range(9)]))
    assert tiles_per_column(widget.png()) == [9]


def test_the_png_is_the_same_bytes_in_another_process() -> None:
    script = (
        "import sys, hashlib; sys.path.insert(0, '.')\n"
        "from tests.widgets.test_widget_pictures import NODES, PODS\n"
        "from labkit.widgets.pods_per_node import PodsPerNode\n"
        "print(hashlib.sha256(PodsPerNode(NODES, PODS, namespace='default').png()).hexdigest())\n"
    )
    runs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}  # fmt: skip
    assert len(runs) == 1


def test_text_is_short_and_deterministic_and_the_bundle_has_a_png() -> None:
    widget = PodsPerNode(NODES, PODS, namespace="default", selector="app=web")
    bundle = widget._repr_mimebundle_()
    assert bundle["text/plain"] == "PodsPerNode(namespace='default', selector='app=web')"
    assert bundle["image/png"].startswith("iVBORw0KGgo")  # base64 of the PNG signature
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_an_action_that_fails_shows_a_message_not_a_traceback() -> None:
    def refuse(node: str) -> None:
        raise RuntimeError(f"node {node} says no")

    widget = PodsPerNode(NODES, PODS, namespace="default", actions={"cordon": refuse})
    widget.node_choice.value = "lab-worker"
    widget.buttons["cordon"].click()
    assert "cordon lab-worker failed: node lab-worker says no" in widget.message.value
    assert widget.buttons["stop node"].disabled  # no such action given: no live button


class FakeRun:
    """A run whose batches go to two pods in turn; a third pod joins half way."""

    source = "records"

    def __init__(self) -> None:
        self.sent = 0

    def send(self, n: int) -> tuple[RequestSample, ...]:
        out = []
        for _ in range(n):
            pods = ["p1", "p2", "p3"] if self.sent >= 50 else ["p1", "p2"]
            out.append(RequestSample(self.sent, 200, 1.0, self.sent, pods[self.sent % len(pods)], "n1"))
            self.sent += 1
        return tuple(out)

    def replicas(self) -> dict[str, str | None]:
        return {"p1": "n1", "p2": "n1", **({"p3": "n1"} if self.sent >= 50 else {})}

    def result(self) -> object:
        return type("Result", (), {"frame": None, "notes": []})()


def test_the_bars_count_every_request_and_mark_a_replica_that_came_during_the_run() -> None:
    widget = RequestDistribution("web", lambda choice: FakeRun(), n=100, choices=["random"], choice="random")
    widget.send()
    widget.wait(10)
    tally = widget.state
    assert tally.sent == 100 and sum(tally.counts.values()) == 100 and tally.done
    assert {pod: mark for pod, _, _, mark in tally.rows()} == {"p1": "", "p2": "", "p3": "new"}
    assert 'data-pod="p3" data-requests=' in widget.view.value and "(new)" in widget.view.value
    assert repr(widget) == "RequestDistribution(service='web', n=100, balancing='random')"


def test_a_failing_run_shows_why_in_the_widget() -> None:
    def start(choice: str) -> FakeRun:
        raise RuntimeError("service web has no ready endpoints")

    widget = RequestDistribution("web", start, n=10, choices=["random"], choice="random")
    widget.send()
    widget.wait(10)
    assert "the run failed: service web has no ready endpoints" in widget.view.value
    assert not widget.send_button.disabled


@pytest.mark.parametrize("errors", [0, 3])
def test_the_distribution_png_draws(errors: int) -> None:
    tally = Tally("web", "random", total=10, sent=10, counts={"p1": 7 - errors, "p2": 3}, errors=errors,
                  replicas={"p1": "n1", "p2": "n2"})  # fmt: skip
    from labkit.widgets.distribution_view import png

    assert png(tally) == png(tally) and png(tally).startswith(b"\x89PNG")
