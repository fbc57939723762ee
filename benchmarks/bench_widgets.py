"""Issue 14 targets: the widgets' own latency and overhead, on the embedded cluster.

- **Pod Ready → the pods-per-node widget shows it: p50 ≤ 0.3 s.** A live ``lab.pods_per_node()``
  watches the namespace. Each round creates one echo pod with a readiness probe. A second,
  independent watch on that pod (a raw HTTP watch stream) notes when the API server first
  reports it Ready; the widget's ``show`` notes when its models first have the pod running and
  ready. The difference is the widget's delay (its watch, the coalescing and the re-list).
- **A request-distribution run of 1,000 requests against the bare traffic tool: ratio ≤ 1.2.**
  ``lab.request_distribution(svc, 1000, wait=True)`` (batches, a redraw after each) and
  ``labkit.kube.traffic.traffic(..., 1000)`` take turns on the same Service (3 echo replicas,
  round robin) and the median wall times are compared.

The cluster (3 nodes) lives in a temporary LABKIT_HOME, deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.common import Row

READY_TARGET_S = 0.3
RATIO_TARGET = 1.2
PROBE = {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}


def _pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "ready"}},
            "spec": {"containers": [{"name": "echo", "image": "labkit/echo", "readinessProbe": PROBE,
                                     "ports": [{"containerPort": 8080}]}]}}  # fmt: skip


def _ready_seen_by_api(lab: Any, name: str, seen: dict[str, float], started: threading.Event) -> None:
    """A raw watch on one pod: the moment the API server reports it Ready."""
    kube = lab.kube
    conn = kube.connection(timeout=60)
    query = f"watch=1&fieldSelector=metadata.name%3D{name}"
    path = f"{kube.base_path}/api/v1/namespaces/{lab.namespace}/pods?{query}"
    conn.request("GET", path, headers=kube.headers())
    response = conn.getresponse()
    started.set()
    try:
        while True:
            line = response.readline()
            if not line:
                return
            obj = json.loads(line).get("object", {})
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                seen[name] = time.perf_counter()
                return
    finally:
        conn.close()


def measure_ready(lab: Any, rounds: int, deadline: float) -> list[float]:
    """Seconds from the API server's Ready to the widget's, per pod."""
    widget = lab.pods_per_node(selector="bench=ready")
    shown: dict[str, float] = {}
    original = widget.show

    def show(nodes: Any, pods: Any) -> None:
        original(nodes, pods)
        now = time.perf_counter()
        for p in pods:
            if p.state == "running":
                shown.setdefault(p.name, now)

    widget.feed.on_change = show  # type: ignore[union-attr]
    delays = []
    try:
        for i in range(rounds):
            if time.perf_counter() > deadline:
                break
            name = f"ready{i}"
            api_seen: dict[str, float] = {}
            started = threading.Event()
            watcher = threading.Thread(target=_ready_seen_by_api, args=(lab, name, api_seen, started),
                                       daemon=True)  # fmt: skip
            watcher.start()
            started.wait(10)
            lab.apply_objects([_pod(name)], wait=False)
            watcher.join(30)
            limit = time.perf_counter() + 10
            while name not in shown and time.perf_counter() < limit:
                time.sleep(0.005)
            if name in api_seen and name in shown:
                delays.append(shown[name] - api_seen[name])
            lab.api.request("DELETE", f"/api/v1/namespaces/{lab.namespace}/pods/{name}?gracePeriodSeconds=0")
    finally:
        widget.close()
    return delays


def measure_overhead(lab: Any, repeats: int, n: int) -> tuple[list[float], list[float]]:
    """(bare traffic seconds, request_distribution seconds), taking turns."""
    from labkit.kube.traffic import traffic

    bare, widget_runs = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = traffic(lab.kube, "web", n, namespace=lab.namespace, mode="round-robin")
        bare.append(time.perf_counter() - started)
        assert len(result) == n and result.errors == 0
        started = time.perf_counter()
        widget = lab.request_distribution("web", n, mode="round-robin", wait=True)
        widget_runs.append(time.perf_counter() - started)
        assert widget.state.sent == n and sum(widget.state.counts.values()) == n, widget.state
        widget.close()
    return bare, widget_runs


def setup(lab: Any) -> None:
    """3 echo replicas with a readiness probe behind Service "web"."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                               {"name": "echo", "image": "labkit/echo", "readinessProbe": PROBE,
                                "ports": [{"containerPort": 8080}]}]}}}}  # fmt: skip
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}  # fmt: skip
    lab.apply_objects([deployment, service], timeout=60)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bounded = common.bounded_int
    parser.add_argument("--rounds", type=bounded(1, 100), default=20, help="pods to time (default 20)")
    parser.add_argument("--repeats", type=bounded(1, 20), default=5, help="runs of each (default 5)")
    parser.add_argument("--requests", type=bounded(10, 10_000), default=1000, help="per run (1000)")
    common.add_common_args(parser, max_seconds=300)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    info = common.machine()
    home = common.Home(Path(tempfile.mkdtemp(prefix="labkit-bench-")), name="labkit")
    os.environ["LABKIT_HOME"] = str(home.path)
    try:
        from labkit import connect

        lab = connect("embedded")
        setup(lab)
        delays = measure_ready(lab, args.rounds, time.perf_counter() + args.max_seconds / 2)
        bare, widget_runs = measure_overhead(lab, args.repeats, args.requests)
    finally:
        home.destroy()
    p50 = common.summary(delays)["p50"]
    ratio = common.summary(widget_runs)["p50"] / common.summary(bare)["p50"]
    rows = [
        Row("widgets", "pod Ready (API server) -> pods-per-node widget shows it: p50", f"{p50 * 1000:.0f} ms",
            f"≤ {READY_TARGET_S * 1000:.0f} ms", p50 <= READY_TARGET_S),
        Row("widgets", "  all pods", common.describe("delay", [d * 1000 for d in delays])),
        Row("widgets", f"request_distribution / bare traffic, {args.requests} requests: median ratio",
            f"{ratio:.2f}", f"≤ {RATIO_TARGET}", ratio <= RATIO_TARGET),
        Row("widgets", "  bare traffic", common.describe("run", [t * 1000 for t in bare])),
        Row("widgets", "  request_distribution", common.describe("run", [t * 1000 for t in widget_runs])),
    ]
    common.report(rows, info, args.json, {"ready_delays": delays, "bare": bare, "widget": widget_runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
