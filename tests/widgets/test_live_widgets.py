"""The widgets live on a real embedded cluster: what their state shows after the cluster changes.

A cluster of its own (with fast eviction), because the tests stop a node."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from labkit.clusters.embedded import EmbeddedBackend
from labkit.errors import LabError
from labkit.lab import Lab
from labkit.widgets.pods_per_node import PodsPerNode
from tests.cluster.pods_support import echo_deployment, wait_until
from tests.conftest import FAST, labkit, start_tuned

READY = {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A Lab on a cluster of its own, with 2 echo replicas behind Service "web"."""
    cluster = start_tuned(tmp_path_factory.mktemp("labkit-widgets"), "widgets", *FAST)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_HOME", str(cluster.home))
        made = Lab(EmbeddedBackend(cluster.name), session="widgets")
        made.use("widgets")
        made.apply_objects([echo_deployment("web", ports=[{"containerPort": 8080}], readinessProbe=READY),
                            SERVICE])  # fmt: skip
        yield made
    labkit("cluster", "down", "--name", cluster.name, "--delete", home=cluster.home, check=False)


def _running(widget: PodsPerNode) -> set[str]:
    return {p.name for p in widget.pods if p.state == "running"}


def _condition(widget: PodsPerNode, node: str) -> str:
    return {b.name: b.condition for b in widget.picture.boxes}[node]


def _watch_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("labkit-")]


def test_a_deleted_pods_tile_goes_and_a_new_one_comes(lab: Lab) -> None:
    widget = lab.pods_per_node()
    try:
        before = wait_until("2 running tiles", lambda: _running(widget), lambda r: len(r) == 2)
        victim = sorted(before)[0]
        widget.pod_choice.value = victim
        widget.buttons["delete pod"].click()  # what a learner's click does
        assert "delete pod" in widget.message.value and "failed" not in widget.message.value
        states = lambda: {p.name: p.state for p in widget.pods}  # noqa: E731
        wait_until("its tile terminating", states, lambda s: s.get(victim) in ("terminating", None))
        after = wait_until("its tile gone and a new one running", lambda: (states(), widget.view.value),
                           lambda sv: victim not in sv[0] and list(sv[0].values()) == ["running"] * 2,
                           timeout=20)[0]  # fmt: skip
        assert f'data-pod="{victim}"' not in widget.view.value
        new = (set(after) - before).pop()
        assert f'data-pod="{new}" data-state="running"' in widget.view.value
        assert sum(widget.counts.values()) == 2
    finally:
        widget.close()


def test_a_stopped_node_shows_stopped_and_its_pods_move(lab: Lab) -> None:
    widget = lab.pods_per_node()
    try:
        wait_until("2 running tiles", lambda: _running(widget), lambda r: len(r) == 2)
        node = next(p.node for p in widget.pods if p.state == "running")
        widget.node_choice.value = node
        widget.buttons["stop node"].click()
        wait_until(f"{node} stopped", lambda: _condition(widget, node), lambda c: c == "stopped")
        moved = wait_until("2 running pods, none on the stopped node", lambda: widget.pods,
                           lambda pods: sum(p.state == "running" and p.node != node for p in pods) == 2,
                           timeout=30)  # fmt: skip
        assert all(p.node != node for p in moved if p.state == "running")
        assert f'data-node="{node}" data-condition="stopped"' in widget.view.value
        widget.buttons["start node"].click()  # returns once it is Ready again
        wait_until(f"{node} ready again", lambda: _condition(widget, node), lambda c: c == "ready")
    finally:
        widget.close()


def test_scale_and_cordon_buttons_act_on_the_cluster(lab: Lab) -> None:
    widget = lab.pods_per_node()
    try:
        widget.owner_choice.value = "web"
        widget.replicas.value = 4
        widget.buttons["scale"].click()
        wait_until("4 running tiles", lambda: _running(widget), lambda r: len(r) == 4, timeout=20)
        widget.replicas.value = 2
        widget.buttons["scale"].click()
        wait_until("2 running tiles", lambda: _running(widget), lambda r: len(r) == 2, timeout=20)
        worker = "widgets-worker"
        widget.node_choice.value = worker
        widget.buttons["cordon"].click()
        wait_until("cordoned", lambda: _condition(widget, worker), lambda c: c == "cordoned")
        widget.buttons["uncordon"].click()
        wait_until("schedulable", lambda: _condition(widget, worker), lambda c: c == "ready")
    finally:
        widget.close()


def test_it_redraws_at_most_25_times_a_second_in_a_burst(lab: Lab) -> None:
    widget = lab.pods_per_node()
    try:
        wait_until("the first picture", lambda: widget.updates, lambda n: n >= 1)
        start, first = time.monotonic(), widget.updates
        lab.scale("web", 12)
        wait_until("12 running", lambda: _running(widget), lambda r: len(r) == 12, timeout=30)
        lab.scale("web", 2)
        wait_until("2 running", lambda: _running(widget), lambda r: len(r) == 2, timeout=30)
        seconds = time.monotonic() - start
        assert widget.updates - first <= 25 * seconds + 1, (widget.updates - first, seconds)
        assert widget.updates - first >= 2  # it did follow the burst
    finally:
        widget.close()


def test_a_rerun_replaces_the_old_widget_and_close_ends_every_thread(lab: Lab) -> None:
    first = lab.pods_per_node()
    second = lab.pods_per_node()  # the same "cell" again (outside a notebook: the same kind)
    assert first.feed is None and second.feed is not None  # the first one was closed
    assert len(_watch_threads()) == 3, _watch_threads()  # only the second one watches
    second.close()
    wait_until("no labkit thread left", _watch_threads, lambda names: names == [])


def test_300_requests_the_bars_sum_to_300_and_match_the_dataframe(lab: Lab) -> None:
    widget = lab.request_distribution("web", 300, mode="round-robin", wait=True)
    try:
        tally, frame = widget.state, widget.data
        assert tally.sent == 300 and sum(tally.counts.values()) == 300 and tally.errors == 0
        assert tally.counts == frame["pod"].value_counts().to_dict()
        assert sorted(tally.counts.values()) == [150, 150]  # round robin over 2 replicas, exactly
        assert tally.source == "records" and "exact" in widget.view.value
        rows = widget.view.value.split('class="labkit-replica" data-pod=')[1:]
        html_counts = {row.split('"')[1]: int(row.split('data-requests="')[1].split('"')[0]) for row in rows}
        assert html_counts == tally.counts

        widget.choice.value = "pinned"  # compare: one connection to one pod, as port-forward
        assert widget.send()
        widget.wait(60)
        assert len(widget.state.counts) == 1 and widget.state.sent == 300
        assert any("port-forward" in note for note in widget.state.notes)
    finally:
        widget.close()
    assert _watch_threads() == []


def test_a_service_that_does_not_exist_fails_in_the_cell(lab: Lab) -> None:
    with pytest.raises(LabError, match="nope"):
        lab.request_distribution("nope", 10)
    with pytest.raises(LabError, match="not a choice"):
        lab.request_distribution("web", 10, mode="sticky")


