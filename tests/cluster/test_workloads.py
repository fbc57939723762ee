"""Deployments that really run: pods as processes on the workers, rollouts, scaling, replacing.

The first tests run once per kubectl version on the session cluster; the rest use the virtualenv's
kubectl on ``fast_cluster``. Each test works in its own namespace.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

from tests.cluster.pods_support import (
    ECHO,
    POD_IP,
    Kube,
    alive,
    api_client,
    app_pod,
    echo_deployment,
    http,
    one_pid,
    real_port,
    running_and_ready,
    wait_serving,
    wait_until,
    waiting_reason,
)
from tests.cluster.support import LineReader
from tests.conftest import KUBECTLS, Cluster

ECHO_V2 = "labkit/echo:v2"


def _rows(output: str) -> list[list[str]]:
    """A table's rows split into cells (cells separated by 2+ spaces), without the header."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()[1:]]


def _event_reasons(describe: str) -> list[str]:
    """The REASON column of the Events table at the end of ``kubectl describe``."""
    lines = describe.split("\nEvents:\n", 1)[1].splitlines()[2:]  # past the header and its rule
    return [line.split()[1] for line in lines if line.strip()]


def _ready_pods(kube: Kube, selector: str, count: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Wait until exactly ``count`` pods match ``selector``, all Running and Ready (none terminating)."""
    return wait_until(
        f"{count} ready pods ({selector})",
        lambda: kube.pods(selector),
        lambda pods: len(pods) == count and all(running_and_ready(p) for p in pods),
        timeout,
    )


def _workers(cluster: Cluster) -> set[str]:
    return {f"{cluster.name}-worker", f"{cluster.name}-worker2"}


# -- on the session cluster, once per kubectl version -----------------------------------------


def test_a_two_replica_echo_deployment_runs_on_both_workers(
    kubectl, cluster: Cluster, namespace: str
) -> None:
    kube = Kube(KUBECTLS[kubectl.version], cluster, namespace)
    started = time.monotonic()
    kube.apply(echo_deployment("web", replicas=2))
    pods = _ready_pods(kube, "app=web", 2, timeout=5)
    assert time.monotonic() - started < 5, "both pods should be Running and Ready within seconds"

    out = kube("rollout", "status", "deployment/web", "--timeout=20s").stdout
    assert 'deployment "web" successfully rolled out' in out

    wide = kube("get", "pods", "-o", "wide").stdout
    header = re.split(r"\s{2,}", wide.splitlines()[0].strip())
    assert header[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    rows = {r[0]: r for r in _rows(wide)}
    by_name = {p["metadata"]["name"]: p for p in pods}
    assert sorted(rows) == sorted(by_name)
    for name, row in rows.items():
        assert row[1:4] == ["1/1", "Running", "0"], row
        assert POD_IP.match(row[5]) and row[5] == by_name[name]["status"]["podIP"], row
    assert {r[6] for r in rows.values()} == _workers(cluster), (
        "one replica per worker, none on the control plane"
    )

    for name, pod in by_name.items():
        port = real_port(pod)
        wait_serving(port)
        assert kube("logs", name).stdout.startswith(f"echo: listening on 0.0.0.0:{port[1]} (version v1)")
        status, answer = http(port, "/who")
        assert status == 200
        assert (answer["pod"], answer["ip"], answer["path"]) == (name, pod["status"]["podIP"], "/who")

    describe = kube("describe", "pod", next(iter(by_name))).stdout
    assert _event_reasons(describe) == ["Scheduled", "Pulled", "Created", "Started"], describe
    assert f'Container image "{ECHO}" already present on machine' in describe


def test_logs_follow_streams_each_request_and_tail_limits(kubectl, cluster: Cluster, namespace: str) -> None:
    kube = Kube(KUBECTLS[kubectl.version], cluster, namespace)
    kube.apply(app_pod("echo"))
    pod = wait_until("echo running", lambda: kube.pod("echo"), running_and_ready)
    port = real_port(pod)
    wait_serving(port)
    follow = kube.popen("logs", "-f", "echo")
    try:
        reader = LineReader(follow)
        reader.wait_for(r"^echo: listening on ")
        assert http(port, "/followed")[0] == 200
        reader.wait_for(r'"GET /followed HTTP/1\.1" 200')  # streamed, not read after the fact
    finally:
        follow.kill()
        follow.wait()
    tail = kube("logs", "echo", "--tail=1").stdout.splitlines()
    assert len(tail) == 1 and '"GET /followed HTTP/1.1" 200' in tail[0]


# -- on the fast cluster -----------------------------------------------------------------------


def test_a_deleted_pod_is_replaced(kube: Kube) -> None:
    kube.apply(echo_deployment("web", replicas=2))
    before = {p["metadata"]["name"] for p in _ready_pods(kube, "app=web", 2)}
    victim = sorted(before)[0]
    kube("delete", "pod", victim, "--wait=false")
    after = wait_until(
        "a replacement pod",
        lambda: kube.pods("app=web"),
        lambda pods: (
            {p["metadata"]["name"] for p in pods if running_and_ready(p)} - before != set()
            and len([p for p in pods if running_and_ready(p)]) == 2
        ),
    )
    names = {p["metadata"]["name"] for p in after if running_and_ready(p)}
    assert victim not in names and sorted(before)[1] in names
    new = (names - before).pop()
    rs = after[0]["metadata"]["ownerReferences"][0]["name"]
    created = [e["message"] for e in kube.events(rs) if e["reason"] == "SuccessfulCreate"]
    assert f"Created pod: {new}" in created


def test_scale_to_four_then_back_to_one(kube: Kube) -> None:
    kube.apply(echo_deployment("web", replicas=2))
    _ready_pods(kube, "app=web", 2)
    assert "deployment.apps/web scaled" in kube("scale", "deployment/web", "--replicas=4").stdout
    pods = _ready_pods(kube, "app=web", 4)
    nodes = sorted(p["spec"]["nodeName"] for p in pods)
    worker, worker2 = sorted(_workers(kube.cluster))
    assert nodes == [worker, worker, worker2, worker2], "replicas spread evenly over the workers"

    kube("scale", "deployment/web", "--replicas=1")
    (survivor,) = _ready_pods(kube, "app=web", 1)  # the three others are gone, not just terminating
    rs = survivor["metadata"]["ownerReferences"][0]["name"]
    gone = {p["metadata"]["name"] for p in pods} - {survivor["metadata"]["name"]}
    deleted = [e["message"] for e in kube.events(rs) if e["reason"] == "SuccessfulDelete"]
    assert sorted(deleted) == sorted(f"Deleted pod: {name}" for name in gone)
    scaling = [e["message"] for e in kube.events("web") if e["reason"] == "ScalingReplicaSet"]
    assert scaling == [
        f"Scaled up replica set {rs} from 0 to 2",
        f"Scaled up replica set {rs} from 2 to 4",
        f"Scaled down replica set {rs} from 4 to 1",
    ]
    rows = _rows(kube("get", "deployment", "web").stdout)
    assert rows[0][:4] == ["web", "1/1", "1", "1"], rows
    scale = kube.get(f"/apis/apps/v1/namespaces/{kube.namespace}/deployments/web/scale")
    assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (1, 1)


def test_rollout_restart_replaces_every_pod(kube: Kube) -> None:
    kube.apply(echo_deployment("web", replicas=2))
    before = {p["metadata"]["name"] for p in _ready_pods(kube, "app=web", 2)}
    assert "deployment.apps/web restarted" in kube("rollout", "restart", "deployment/web").stdout
    kube("rollout", "status", "deployment/web", "--timeout=20s")
    after = _ready_pods(kube, "app=web", 2)
    assert not before & {p["metadata"]["name"] for p in after}, "every pod is new"
    template = kube.deployment("web")["spec"]["template"]["metadata"]
    assert "kubectl.kubernetes.io/restartedAt" in template["annotations"]


class ListWatch:
    """A Python-client list-then-watch of one kind in a namespace, in a thread, as an informer does
    it: every event, and the objects as they were after each one (``states[0]`` is the list).
    Objects stay plain JSON (the client's models would reject a ReplicaSet without
    ``status.replicas``: see ``test_a_new_replica_set_reports_zero_replicas``)."""

    def __init__(self, kube: Kube, list_function: str, selector: str = "") -> None:
        self.api = api_client(kube.cluster)
        api = client.AppsV1Api(self.api) if "replica_set" in list_function else client.CoreV1Api(self.api)
        self.list = getattr(api, list_function)
        self.namespace, self.selector = kube.namespace, selector
        listed = json.loads(self.list(self.namespace, label_selector=selector, _preload_content=False).data)
        self.states: list[dict[str, dict[str, Any]]] = [{o["metadata"]["name"]: o for o in listed["items"]}]
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._stopped = False
        self._watch = watch.Watch(return_type="object")
        threading.Thread(target=self._run, args=(listed["metadata"]["resourceVersion"],), daemon=True).start()

    def _run(self, resource_version: str) -> None:
        stream = self._watch.stream(
            self.list,
            self.namespace,
            label_selector=self.selector,
            resource_version=resource_version,
            timeout_seconds=30,
        )
        try:
            for event in stream:
                obj = event["object"]
                state = dict(self.states[-1])
                if event["type"] == "DELETED":
                    state.pop(obj["metadata"]["name"], None)
                else:
                    state[obj["metadata"]["name"]] = obj
                self.events.append((event["type"], obj))
                self.states.append(state)
        except Exception:
            if not self._stopped:
                raise  # a watch that breaks before the test is done fails it (as a thread exception)

    def stop(self) -> None:
        """End the watch and close the client."""
        self._stopped = True
        self._watch.stop()
        self.api.close()


def _image(pod: dict[str, Any]) -> str:
    return str(pod["spec"]["containers"][0]["image"])


def _all_ready(count: int, image: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda pods: len(pods) == count and all(running_and_ready(p) and _image(p) == image for p in pods)


def test_a_rolling_update_keeps_three_of_four_ready_and_undo_goes_back(kube: Kube) -> None:
    kube.apply(echo_deployment("web", replicas=4))
    _ready_pods(kube, "app=web", 4)
    kube("rollout", "status", "deployment/web", "--timeout=20s")

    pods = ListWatch(kube, "list_namespaced_pod", "app=web")
    sets = ListWatch(kube, "list_namespaced_replica_set", "app=web")
    try:
        kube("set", "image", "deployment/web", f"echo={ECHO_V2}")
        out = kube("rollout", "status", "deployment/web", "--timeout=30s").stdout
        assert 'deployment "web" successfully rolled out' in out
        wait_until("4 ready pods of the new image", lambda: kube.pods("app=web"), _all_ready(4, ECHO_V2))
        time.sleep(0.2)  # let the watches catch up with the last events
    finally:
        pods.stop()
        sets.stop()
    assert any(_image(pod) == ECHO_V2 for _, pod in pods.events), "the watch saw the rollout"
    ready = [sum(1 for p in state.values() if running_and_ready(p)) for state in pods.states]
    assert min(ready) >= 3, f"fewer than 3 of 4 pods were Ready at times: {ready}"
    wanted = [sum(rs["spec"]["replicas"] for rs in state.values()) for state in sets.states]
    assert max(wanted) == 5, f"the ReplicaSets should want at most 4 + maxSurge 1 pods: {wanted}"
    assert _image(kube.deployment("web")["spec"]["template"]) == ECHO_V2

    assert "rolled back" in kube("rollout", "undo", "deployment/web").stdout
    kube("rollout", "status", "deployment/web", "--timeout=30s")
    wait_until("4 ready pods of the old image", lambda: kube.pods("app=web"), _all_ready(4, ECHO))
    deploy = kube.deployment("web")
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert deploy["status"]["availableReplicas"] == 4


def test_recreate_stops_every_old_pod_before_starting_new_ones(kube: Kube) -> None:
    kube.apply(echo_deployment("web", replicas=2, strategy={"type": "Recreate"}))
    _ready_pods(kube, "app=web", 2)
    pods = ListWatch(kube, "list_namespaced_pod", "app=web")
    try:
        kube("set", "image", "deployment/web", f"echo={ECHO_V2}")
        kube("rollout", "status", "deployment/web", "--timeout=30s")
        wait_until("2 ready pods of the new image", lambda: kube.pods("app=web"), _all_ready(2, ECHO_V2))
        time.sleep(0.2)
    finally:
        pods.stop()
    first_new = next(
        i for i, (kind, pod) in enumerate(pods.events) if kind == "ADDED" and _image(pod) == ECHO_V2
    )
    before = pods.states[first_new]  # the pods just before the first new one was created
    assert before == {}, f"old pods still existed when the first new one was created: {sorted(before)}"


def test_a_new_replica_set_reports_zero_replicas(kube: Kube) -> None:
    labels = {"app": "bare"}
    replica_set = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "bare"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": ECHO}]},
            },
        },
    }
    with api_client(kube.cluster) as api:
        created = client.AppsV1Api(api).create_namespaced_replica_set(kube.namespace, replica_set)
    assert created.status.replicas == 0


def test_a_rollout_to_a_missing_image_stalls_with_three_of_four_serving(kube: Kube) -> None:
    kube.apply(echo_deployment("web", replicas=4))
    kube("rollout", "status", "deployment/web", "--timeout=20s")
    kube("set", "image", "deployment/web", "echo=labkit/nosuch:v2")
    stalled = kube("rollout", "status", "deployment/web", "--timeout=2s", check=False)
    assert stalled.returncode == 1 and "timed out" in stalled.stderr
    assert "2 out of 4 new replicas have been updated" in stalled.stdout
    pods = kube.pods("app=web")
    ready = [p for p in pods if running_and_ready(p)]
    assert len(ready) == 3 and {_image(p) for p in ready} == {ECHO}, "maxUnavailable 1: three old pods serve"
    waiting = sorted(waiting_reason(p) for p in pods if _image(p) != ECHO)
    assert len(waiting) == 2 and set(waiting) <= {"ErrImagePull", "ImagePullBackOff"}, waiting

    kube("rollout", "undo", "deployment/web")
    kube("rollout", "status", "deployment/web", "--timeout=20s")
    wait_until("4 ready pods of the old image", lambda: kube.pods("app=web"), _all_ready(4, ECHO))


def test_deleting_the_deployment_removes_its_pods_and_their_processes(kube: Kube) -> None:
    kube.apply(echo_deployment("web", replicas=2))
    names = {p["metadata"]["name"] for p in _ready_pods(kube, "app=web", 2)}
    pids = {one_pid(kube.cluster, name) for name in names}
    assert len(pids) == 2
    kube("delete", "deployment", "web")
    wait_until("the pods gone", lambda: kube.pods("app=web"), lambda pods: pods == [])
    assert kube.get(f"/apis/apps/v1/namespaces/{kube.namespace}/replicasets")["items"] == []
    wait_until(
        "their processes gone", lambda: [p for p in pids if alive(p)], lambda left: left == [], timeout=3
    )
