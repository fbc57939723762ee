"""The kubelet on one node, with real processes (the echo server and sh) and an in-process store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from labkit.embedded.apiserver.registry import Registry
from labkit.embedded.bootstrap import bootstrap
from labkit.embedded.context import ClusterContext
from labkit.embedded.kubelet import PORTS_ANNOTATION, Kubelet, pod_address
from labkit.embedded.kubelet.network import free_port
from labkit.embedded.podlogs import PodLogs
from labkit.embedded.resources import lookup
from labkit.embedded.runnable_images import builtin_images
from labkit.embedded.state import ClusterConfig, ClusterDir
from labkit.embedded.store import Store

ROOT = Path(__file__).resolve().parents[2]
NODE = "t-control-plane"
PODS = lookup("", "v1", "pods")
CONFIGMAPS = lookup("", "v1", "configmaps")
SECRETS = lookup("", "v1", "secrets")
assert PODS and CONFIGMAPS and SECRETS

Pod = dict[str, Any]


class Node:
    """A store, a registry and one kubelet, as a test drives them."""

    def __init__(self, tmp: Path, **config: Any) -> None:
        self.store = Store(tmp / "store.db")
        self.registry = Registry(self.store)
        bootstrap(self.registry, "t", 1)
        settings = {"backoff_base": 0.2, "backoff_max": 1.0, **config}
        self.ctx = ClusterContext(
            self.registry, ClusterConfig("t", nodes=1, **settings), ClusterDir("t", tmp)
        )
        self.kubelet = Kubelet(self.ctx, NODE, builtin_images())
        self.logs = PodLogs(self.ctx.state.pods_dir)
        self.history: dict[str, list[Pod]] = {}
        self.store.add_listener(self._dispatch)

    def _dispatch(self, event: Any) -> None:
        if event.key != "core/pods":
            return
        self.history.setdefault(event.obj["metadata"]["name"], []).append(event.obj)
        if event.obj.get("spec", {}).get("nodeName") == NODE:
            self.kubelet.notify(event)

    def create(self, name: str, *containers: dict[str, Any], **spec: Any) -> Pod:
        """Create a pod bound to the node (as the scheduler would)."""
        meta = {"name": name, **spec.pop("metadata", {})}
        body = {"metadata": meta, "spec": {"nodeName": NODE, "containers": list(containers), **spec}}
        return self.registry.create(PODS, "default", body)

    def pod(self, name: str) -> Pod | None:
        return self.store.find("core/pods", "default", name)

    async def until(self, name: str, check: Callable[[Pod], bool], timeout: float = 10.0) -> Pod:
        """Wait until the pod passes ``check``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self.pod(name)
            try:
                if pod is not None and check(pod):
                    return pod
            except (KeyError, IndexError):
                pass  # not that far yet
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"pod {name} never got there: {json.dumps((self.pod(name) or {}).get('status'))}"
        )

    async def gone(self, name: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pod(name) is not None:
            assert time.monotonic() < deadline, f"pod {name} was never removed"
            await asyncio.sleep(0.02)

    def events(self, name: str) -> list[tuple[str, str, str]]:
        items, _ = self.store.list("core/events", "default")
        found = [e for e in items if e["involvedObject"]["name"] == name]
        found.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [(e["type"], e["reason"], e["message"]) for e in found]

    def seen_reasons(self, name: str) -> list[str]:
        """Every waiting/terminated reason the pod's first container showed, in order."""
        reasons: list[str] = []
        for pod in self.history.get(name, []):
            for cs in pod.get("status", {}).get("containerStatuses") or []:
                state = cs.get("state") or {}
                reason = next(iter(state.values()), {}).get("reason") or next(iter(state), "")
                if not reasons or reasons[-1] != reason:
                    reasons.append(reason)
        return reasons

    def pids(self) -> list[int]:
        return [c.pid for c in self.kubelet.runtime.containers.values() if c.pid]


def run(tmp: Path, scenario: Callable[[Node], Awaitable[None]], **config: Any) -> None:
    """Run a scenario against a started node; shut the node down afterwards whatever happens."""

    async def main() -> None:
        node = Node(tmp, **config)
        await node.kubelet.start()
        try:
            await scenario(node)
        finally:
            await node.kubelet.shutdown()
            node.store.close()

    asyncio.run(main())


def state(pod: Pod, container: int = 0) -> dict[str, Any]:
    return pod["status"]["containerStatuses"][container]["state"]


def condition(pod: Pod, kind: str) -> dict[str, Any]:
    return next(c for c in pod["status"]["conditions"] if c["type"] == kind)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def http(host: str, port: int, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(
        f"http://{host}:{port}{path}", method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


ECHO = {
    "name": "web",
    "image": "labkit/echo:v1",
    "ports": [{"name": "http", "containerPort": 8080}],
    "readinessProbe": {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSeconds": 1,
        "failureThreshold": 1,
    },
}


def sh(script: str, name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


def running(pod: Pod) -> bool:
    return pod.get("status", {}).get("phase") == "Running"


def ready(pod: Pod) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
    )


# -- running and ready -------------------------------------------------------------------


def test_an_echo_pod_runs_becomes_ready_and_answers(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        created = node.create("web", dict(ECHO))
        started = time.monotonic()
        pod = await node.until("web", running)
        assert time.monotonic() - started < 1.0
        assert pod["status"]["podIP"].startswith("127.244.0.") and pod["status"]["podIP"] not in (
            "127.244.0.0",
            "127.244.0.1",
        )
        assert pod["status"]["hostIP"] == "127.18.0.2"
        assert pod["status"]["qosClass"] == "BestEffort"
        assert pod["status"]["startTime"]
        cs = pod["status"]["containerStatuses"][0]
        assert cs["containerID"].startswith("labkit://") and cs["imageID"].startswith("labkit/echo@sha256:")
        assert cs["started"] is True and cs["restartCount"] == 0
        pod = await node.until("web", ready)
        assert [c["type"] for c in pod["status"]["conditions"]] == [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ]
        # Running was written once, before Ready: no ContainerCreating write in between
        assert node.seen_reasons("web") == ["running"]
        # the app listens on its containerPort on its own pod IP, as in a real cluster
        assert PORTS_ANNOTATION not in (pod["metadata"].get("annotations") or {})
        host, port = pod_address(pod, "http")
        assert (host, port) == pod_address(pod, 8080) == (pod["status"]["podIP"], 8080)
        answer = await asyncio.to_thread(http, host, port, "/hello")
        assert answer == {
            "pod": "web",
            "node": NODE,
            "ip": pod["status"]["podIP"],
            "count": 1,
            "path": "/hello",
            "version": "v1",
        }
        assert pod_address(pod, "nope") is None
        reasons = [(kind, reason) for kind, reason, _ in node.events("web")]
        assert reasons[:3] == [("Normal", "Pulled"), ("Normal", "Created"), ("Normal", "Started")]
        assert node.events("web")[0][2] == 'Container image "labkit/echo:v1" already present on machine'
        assert created["metadata"]["uid"] == pod["metadata"]["uid"]

    run(tmp_path, scenario)


def test_the_node_is_reported_ready_and_its_lease_renewed(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        nodes = node.store.find("core/nodes", "", NODE)
        assert nodes is not None
        assert {c["type"]: c["status"] for c in nodes["status"]["conditions"]}["Ready"] == "True"
        first = node.store.find("coordination.k8s.io/leases", "kube-node-lease", NODE)
        assert first is not None and first["spec"]["renewTime"].endswith("Z")
        await asyncio.sleep(0.5)
        later = node.store.find("coordination.k8s.io/leases", "kube-node-lease", NODE)
        assert later is not None and later["spec"]["renewTime"] > first["spec"]["renewTime"]

    run(tmp_path, scenario, node_grace=0.6)


def test_readiness_failure_makes_the_pod_not_ready_and_a_closed_port_is_reported(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        closed = free_port()
        node.create("web", dict(ECHO))
        node.create(
            "closed",
            sh(
                "sleep 30",
                readinessProbe={"tcpSocket": {"port": closed}, "periodSeconds": 1, "failureThreshold": 1},
            ),
        )
        pod = await node.until("web", ready)
        host, port = pod_address(pod, "http")
        await asyncio.to_thread(http, host, port, "/readyz/disable", "POST")
        pod = await node.until("web", lambda p: not ready(p))
        assert condition(pod, "Ready")["reason"] == "ContainersNotReady"
        assert condition(pod, "Ready")["message"] == "containers with unready status: [web]"
        assert condition(pod, "ContainersReady")["status"] == "False"
        assert pod["status"]["phase"] == "Running"
        assert (
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
        ) in node.events("web")
        await asyncio.to_thread(http, host, port, "/readyz/enable", "POST")
        await node.until("web", ready)
        closed_pod = await node.until(
            "closed", lambda p: any(r == "Unhealthy" for _, r, _ in node.events("closed"))
        )
        ip = closed_pod["status"]["podIP"]
        assert (
            "Warning",
            "Unhealthy",
            f"Readiness probe failed: dial tcp {ip}:{closed}: connect: connection refused",
        ) in node.events("closed")
        assert not ready(closed_pod)

    run(tmp_path, scenario)


# -- logs ----------------------------------------------------------------------------------


def test_logs_are_read_and_followed(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("talk", sh("echo one; echo two >&2; sleep 0.6; echo three"), restartPolicy="Never")
        pod = await node.until("talk", running)
        await asyncio.sleep(0.2)
        assert await node.logs.read(pod, "main") == b"one\ntwo\n"
        chunks = [chunk async for chunk in node.logs.follow(pod, "main")]
        assert b"".join(chunks) == b"one\ntwo\nthree\n"
        pod = await node.until("talk", lambda p: p["status"]["phase"] == "Succeeded")
        assert await node.logs.read(pod, "main", tail_lines=1) == b"three\n"
        stamped = await node.logs.read(pod, "main", timestamps=True)
        assert stamped.split(b" ", 1)[1].startswith(b"one\n") and stamped[:4].isdigit()
        with pytest.raises(LookupError, match='previous terminated container "main" in pod "talk" not found'):
            await node.logs.read(pod, "main", previous=True)

    run(tmp_path, scenario)


# -- exits and restarts --------------------------------------------------------------------


def test_exit_1_crash_loops_with_growing_back_off(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("crash", sh("echo boom; exit 1"))
        pod = await node.until("crash", lambda p: p["status"]["containerStatuses"][0]["restartCount"] >= 3)
        messages = []
        for seen in node.history["crash"]:
            for cs in seen.get("status", {}).get("containerStatuses") or []:
                waiting = cs["state"].get("waiting") or {}
                if waiting.get("reason") == "CrashLoopBackOff" and waiting["message"] not in messages:
                    messages.append(waiting["message"])
        uid = pod["metadata"]["uid"]
        assert messages[:2] == [
            f"back-off 200ms restarting failed container=main pod=crash_default({uid})",
            f"back-off 400ms restarting failed container=main pod=crash_default({uid})",
        ]
        last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
        assert last["exitCode"] == 1 and last["reason"] == "Error"
        assert pod["status"]["phase"] == "Running"
        backoff = f"Back-off restarting failed container main in pod crash_default({uid})"
        assert ("Warning", "BackOff", backoff) in node.events("crash")
        assert await node.logs.read(pod, "main", previous=True) == b"boom\n"

    run(tmp_path, scenario)


def test_restart_policies_end_in_succeeded_or_failed(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("ok", sh("exit 0"), restartPolicy="Never")
        node.create("bad", sh("exit 3"), restartPolicy="Never")
        # a restarted container starts from its image again, so the marker lives in an emptyDir
        node.create(
            "retry",
            sh(
                "test -f /data/again && exit 0; touch /data/again; exit 2",
                volumeMounts=[{"name": "data", "mountPath": "/data"}],
            ),
            restartPolicy="OnFailure",
            volumes=[{"name": "data", "emptyDir": {}}],
        )
        ok = await node.until("ok", lambda p: p["status"]["phase"] == "Succeeded")
        assert state(ok)["terminated"]["reason"] == "Completed"
        assert condition(ok, "Ready")["reason"] == "PodCompleted"
        bad = await node.until("bad", lambda p: p["status"]["phase"] == "Failed")
        assert state(bad)["terminated"]["exitCode"] == 3 and state(bad)["terminated"]["reason"] == "Error"
        retry = await node.until("retry", lambda p: p["status"]["phase"] == "Succeeded")
        assert retry["status"]["containerStatuses"][0]["restartCount"] == 1

    run(tmp_path, scenario)


def test_kill_9_of_a_container_is_seen_and_restarted(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("sleeper", {"name": "main", "image": "busybox", "command": ["sleep", "3600"]})
        await node.until("sleeper", running)
        (pid,) = node.pids()
        os.kill(pid, signal.SIGKILL)
        pod = await node.until("sleeper", lambda p: p["status"]["containerStatuses"][0]["restartCount"] == 1)
        pod = await node.until("sleeper", lambda p: "running" in state(p))
        last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
        assert last["exitCode"] == 137 and last["reason"] == "Error"
        assert node.pids() and node.pids() != [pid]

    run(tmp_path, scenario)


def test_liveness_failure_kills_and_restarts(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        liveness = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1, "failureThreshold": 2}
        live = {**ECHO, "livenessProbe": liveness}
        node.create("web", live)
        pod = await node.until("web", ready)
        host, port = pod_address(pod, 8080)
        await asyncio.to_thread(http, host, port, "/healthz/disable", "POST")
        pod = await node.until(
            "web", lambda p: p["status"]["containerStatuses"][0]["restartCount"] == 1, timeout=6
        )
        events = node.events("web")
        assert (
            "Warning",
            "Unhealthy",
            "Liveness probe failed: HTTP probe failed with statuscode: 500",
        ) in events
        assert ("Normal", "Killing", "Container web failed liveness probe, will be restarted") in events
        pod = await node.until("web", ready)
        assert pod_address(pod, 8080) == (host, port)  # the same real port after the restart
        assert (await asyncio.to_thread(http, host, port, "/"))["count"] == 1

    run(tmp_path, scenario)


def test_replicas_share_a_fixed_port_and_a_clash_inside_one_pod_is_an_event(tmp_path: Path) -> None:
    """Two pods both listen on 8080 (each on its own pod IP, as in a real cluster); two
    containers of one pod cannot, and the pod gets an event naming the port and the process."""

    async def scenario(node: Node) -> None:
        node.create("first", {"name": "web", "image": "labkit/echo"})
        node.create("second", {"name": "web", "image": "labkit/echo"})
        first, second = await node.until("first", running), await node.until("second", running)
        for pod in (first, second):
            deadline = time.monotonic() + 5
            while b"listening" not in await node.logs.read(pod, "web"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        for pod in (first, second):
            answer = await asyncio.to_thread(http, pod["status"]["podIP"], 8080, "/")
            assert answer["pod"] == pod["metadata"]["name"]
        node.create(
            "pair",
            {"name": "web", "image": "labkit/echo"},
            {"name": "copy", "image": "labkit/echo", "env": [{"name": "PORT", "value": "8080"}]},
        )
        pod = await node.until(
            "pair", lambda p: any(r == "PortInUse" for _, r, _ in node.events("pair")), timeout=15
        )
        message = next(m for _, r, m in node.events("pair") if r == "PortInUse")
        assert "port 8080" in message and "already in use in this pod" in message and "python" in message
        statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
        assert set(statuses) == {"web", "copy"}

    run(tmp_path, scenario)


def test_an_unknown_image_is_err_image_pull_then_image_pull_back_off(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("missing", {"name": "app", "image": "nginx:1.25"})
        pod = await node.until(
            "missing", lambda p: (state(p).get("waiting") or {}).get("reason") == "ImagePullBackOff"
        )
        assert node.seen_reasons("missing")[:2] == ["ErrImagePull", "ImagePullBackOff"]
        assert pod["status"]["phase"] == "Pending"
        messages = [m for _, r, m in node.events("missing") if r == "Failed"]
        assert messages[0].startswith('Failed to pull image "nginx:1.25": image "nginx:1.25" not found: ')
        assert "labkit/echo" in messages[0] and "%%dockerfile" in messages[0]
        assert "Error: ErrImagePull" in messages and "Error: ImagePullBackOff" in messages
        with pytest.raises(LookupError, match="is waiting to start: trying and failing to pull image"):
            await node.logs.read(pod, "app")
        node.create("never", {"name": "app", "image": "nginx:1.25", "imagePullPolicy": "Never"})
        never = await node.until("never", lambda p: "waiting" in state(p))
        assert state(never)["waiting"] == {
            "reason": "ErrImageNeverPull",
            "message": 'Container image "nginx:1.25" is not present with pull policy of Never',
        }

    run(tmp_path, scenario)


def test_a_missing_configmap_is_create_container_config_error_until_it_exists(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        env = [
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}}
        ]
        node.create("cfg", sh("echo $GREETING; sleep 30", env=env))
        pod = await node.until("cfg", lambda p: "waiting" in state(p))
        assert state(pod)["waiting"] == {
            "reason": "CreateContainerConfigError",
            "message": 'configmap "settings" not found',
        }
        assert ("Warning", "Failed", 'Error: configmap "settings" not found') in node.events("cfg")
        node.registry.create(
            CONFIGMAPS, "default", {"metadata": {"name": "settings"}, "data": {"other": "x"}}
        )
        pod = await node.until(
            "cfg", lambda p: "find key" in (state(p).get("waiting") or {}).get("message", "")
        )
        assert state(pod)["waiting"]["message"] == "couldn't find key greeting in ConfigMap default/settings"
        node.registry.mutate(
            CONFIGMAPS, "default", "settings", lambda cm: cm.update(data={"greeting": "hello"})
        )
        pod = await node.until("cfg", running)
        await asyncio.sleep(0.2)
        assert await node.logs.read(pod, "main") == b"hello\n"

    run(tmp_path, scenario)


def test_a_command_not_found_is_run_container_error(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("typo", {"name": "main", "image": "busybox", "command": ["no-such-command", "x"]})
        pod = await node.until("typo", lambda p: "waiting" in state(p))
        waiting = state(pod)["waiting"]
        assert waiting["reason"] == "RunContainerError"
        assert 'exec: "no-such-command": executable file not found in $PATH' in waiting["message"]
        assert any(r == "Failed" and "executable file not found" in m for _, r, m in node.events("typo"))
        last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
        assert last["exitCode"] == 128 and last["reason"] == "StartError"

    run(tmp_path, scenario)


def test_environment_and_command_follow_kubernetes_rules(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.registry.create(
            CONFIGMAPS, "default", {"metadata": {"name": "cm"}, "data": {"A": "1", "B": "2"}}
        )
        node.registry.create(SECRETS, "default", {"metadata": {"name": "s"}, "data": {"token": "c2VjcmV0"}})
        env = [
            {"name": "WHO", "value": "world"},
            {"name": "GREETING", "value": "hello $(WHO) $$(WHO) $(NOPE)"},
            {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {
                "name": "OPT",
                "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": True}},
            },
        ]
        script = (
            'echo "$GREETING|$ME|$NODE_NAME|$APP|$TOKEN|${OPT-unset}|$CM_A$CM_B|$HOSTNAME|$POD_IP|$PORT|$1"'
        )
        node.create(
            "env",
            {
                "name": "main",
                "image": "busybox",
                "command": ["sh", "-c", script, "--"],
                "args": ["$(WHO)"],
                "env": env,
                "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
            },
            metadata={"labels": {"app": "demo"}},
            restartPolicy="Never",
        )
        pod = await node.until("env", lambda p: p["status"]["phase"] == "Succeeded")
        fields = (await node.logs.read(pod, "main")).decode().strip().split("|")
        assert fields == [
            "hello world $(WHO) $(NOPE)",
            "env",
            NODE,
            "demo",
            "secret",
            "unset",
            "12",
            "env",
            pod["status"]["podIP"],
            "",  # PORT: the container declares no port
            "world",
        ]

    run(tmp_path, scenario)


def test_init_containers_run_first(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("init", sh("sleep 30"), initContainers=[sh("sleep 0.4; echo prepared", name="prepare")])
        pod = await node.until(
            "init",
            lambda p: "running" in (p["status"].get("initContainerStatuses") or [{}])[0].get("state", {}),
        )
        assert pod["status"]["phase"] == "Pending"
        assert condition(pod, "Initialized")["message"] == "containers with incomplete status: [prepare]"
        assert state(pod)["waiting"]["reason"] == "PodInitializing"
        pod = await node.until("init", running)
        init = pod["status"]["initContainerStatuses"][0]
        assert init["state"]["terminated"]["reason"] == "Completed"
        assert condition(pod, "Initialized")["status"] == "True"
        assert await node.logs.read(pod, "prepare") == b"prepared\n"

    run(tmp_path, scenario)


# -- stopping ------------------------------------------------------------------------------


def test_graceful_deletion_sends_sigterm_then_sigkill(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        stubborn = "trap 'echo got TERM' TERM; echo started; while true; do sleep 0.1; done"
        node.create("stubborn", sh(stubborn), terminationGracePeriodSeconds=1)
        node.create("web", dict(ECHO))
        await node.until("stubborn", running)
        await node.until("web", ready)
        pids = node.pids()
        assert len(pids) == 2
        started = time.monotonic()
        node.registry.delete(PODS, "default", "web")
        _, gone = node.registry.delete(PODS, "default", "stubborn")
        assert gone is False
        terminating = node.pod("stubborn")
        assert terminating is not None and terminating["metadata"]["deletionGracePeriodSeconds"] == 1
        await node.gone("web", timeout=1)
        assert time.monotonic() - started < 0.9  # the echo server exits on SIGTERM at once
        logs = await node.logs.read(terminating, "main")
        await node.gone("stubborn")
        assert time.monotonic() - started >= 0.9  # it ignored SIGTERM: killed after the grace period
        assert ("Normal", "Killing", "Stopping container main") in node.events("stubborn")
        assert logs.startswith(b"started\n")
        assert not any(alive(pid) for pid in pids)
        assert not list(node.ctx.state.pods_dir.glob("default_stubborn_*"))

    run(tmp_path, scenario)


def test_stop_kills_everything_and_reports_nothing(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("a", sh("sleep 30"))
        node.create("b", sh("sleep 30"))
        await node.until("a", running)
        await node.until("b", running)
        pids = node.pids()
        writes = len(node.history["a"])
        lease = node.store.find("coordination.k8s.io/leases", "kube-node-lease", NODE)
        await node.kubelet.stop()
        assert not any(alive(pid) for pid in pids)
        await asyncio.sleep(0.4)
        assert len(node.history["a"]) == writes  # no status update: the pod still says Running
        assert node.store.find("coordination.k8s.io/leases", "kube-node-lease", NODE) == lease
        await node.kubelet.start()  # powered on again: its pods run again
        pod = await node.until("a", lambda p: p["status"]["containerStatuses"][0]["restartCount"] == 1)
        assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"] == "Unknown"

    run(tmp_path, scenario, node_grace=0.2)


def test_shutdown_leaves_no_process_and_a_restart_runs_the_pods_again(tmp_path: Path) -> None:
    async def main() -> None:
        node = Node(tmp_path)
        await node.kubelet.start()
        node.create("web", dict(ECHO))
        before = await node.until("web", ready)
        pids = node.pids()
        await node.kubelet.shutdown()
        assert pids and not any(alive(pid) for pid in pids)
        again = Kubelet(node.ctx, NODE, builtin_images())
        node.kubelet = again
        await again.start()
        pod = await node.until(
            "web", lambda p: ready(p) and p["status"]["containerStatuses"][0]["restartCount"] == 1
        )
        assert pod["status"]["podIP"] == before["status"]["podIP"]
        assert pod_address(pod, "http") == pod_address(before, "http")
        await again.shutdown()
        node.store.close()

    asyncio.run(main())


def test_a_new_kubelet_kills_what_a_killed_daemon_left(tmp_path: Path) -> None:
    """The daemon is SIGKILLed: its pod processes die with it (PDEATHSIG), and processes they
    started are killed by the next kubelet of that node."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys, time
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests" / "unit")!r}]
        from pathlib import Path
        from test_kubelet import Node, sh

        async def main():
            node = Node(Path({str(tmp_path)!r}))
            await node.kubelet.start()
            node.create("orphans", sh("sleep 60 & sleep 60"))
            await node.until("orphans", lambda p: p["status"].get("phase") == "Running")
            await asyncio.sleep(0.3)
            print(node.pids()[0], flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    daemon = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None
        main_pid = int(daemon.stdout.readline())
        group = [int(p.name) for p in Path("/proc").glob("[0-9]*") if _session(int(p.name)) == main_pid]
        assert len(group) >= 2
        daemon.kill()
        daemon.wait()
        deadline = time.monotonic() + 10  # a SIGKILL takes effect soon, not at once (a loaded CI box)
        while alive(main_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(main_pid)
        # Under bubblewrap the container's PID namespace ends with its tool, so nothing outlives
        # it; without one (PRoot, or no isolation) the backgrounded sleep may: either way, the
        # next kubelet of the node leaves nothing of the pod alive.

        async def restart() -> None:
            node = Node(tmp_path)
            await node.kubelet.start()
            await node.kubelet.shutdown()
            node.store.close()

        asyncio.run(restart())
        deadline = time.monotonic() + 10  # the kills were sent: wait for them to take effect
        while any(alive(pid) for pid in group) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(alive(pid) for pid in group)
    finally:
        daemon.kill()


def _session(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


# -- the simulated runtime ---------------------------------------------------------------------


def test_simulated_pods_run_without_processes(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        for i in range(50):
            node.create(
                f"sim-{i}",
                {"name": "app", "image": "anything:1", "readinessProbe": {"exec": {"command": ["false"]}}},
            )
        pods = [await node.until(f"sim-{i}", ready, timeout=5) for i in range(50)]
        assert node.pids() == []
        assert len({p["status"]["podIP"] for p in pods}) == 50
        assert all(p["status"]["containerStatuses"][0]["state"].get("running") for p in pods)
        node.registry.delete(PODS, "default", "sim-0")
        await node.gone("sim-0", timeout=2)

    run(tmp_path, scenario, runtime="simulated")


def test_a_pod_can_ask_for_the_simulated_runtime(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create(
            "sim",
            {"name": "app", "image": "not-present:1"},
            metadata={"annotations": {"labkit.dev/runtime": "simulated"}},
        )
        pod = await node.until("sim", ready)
        assert pod["status"]["phase"] == "Running" and node.pids() == []

    run(tmp_path, scenario)


def test_more_pods_than_addresses_wait_for_one(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        for i in range(254):
            node.create(f"p{i}", {"name": "app", "image": "busybox"})
        await node.until("p252", running)
        await asyncio.sleep(0.1)
        last = node.pod("p253")
        assert last is not None and "podIP" not in last["status"]
        (event,) = [m for _, r, m in node.events("p253") if r == "FailedCreatePodSandBox"]
        assert event.endswith("no IP addresses available in range set: 127.244.0.2-127.244.0.254")
        node.registry.delete(PODS, "default", "p0")
        pod = await node.until("p253", running)
        assert pod["status"]["podIP"] == "127.244.0.2"  # freed by p0

    run(tmp_path, scenario, runtime="simulated")


# -- a changed image ---------------------------------------------------------------------------


def test_a_new_image_restarts_the_container_with_it(tmp_path: Path) -> None:
    async def scenario(node: Node) -> None:
        node.create("web", dict(ECHO))
        node.create("typo", {"name": "app", "image": "busybx:1", "command": ["sleep", "30"]})
        pod = await node.until("web", ready)
        await node.until("typo", lambda p: "ImagePull" in (state(p).get("waiting") or {}).get("reason", ""))

        def image(name: str) -> Callable[[Pod], None]:
            return lambda p: p["spec"]["containers"][0].update(image=name)

        node.registry.mutate(PODS, "default", "web", image("labkit/echo:v2"))
        node.registry.mutate(PODS, "default", "typo", image("busybox:1"))
        await node.until("typo", running, timeout=2)  # fixed at once, without waiting out the back-off
        pod = await node.until(
            "web", lambda p: ready(p) and p["status"]["containerStatuses"][0]["restartCount"] == 1
        )
        assert pod["status"]["containerStatuses"][0]["image"] == "labkit/echo:v2"
        assert ("Normal", "Killing", "Container web definition changed, will be restarted") in node.events(
            "web"
        )
        assert (await asyncio.to_thread(http, *pod_address(pod, "http"), "/"))["version"] == "v2"

    run(tmp_path, scenario, backoff_base=5.0, backoff_max=10.0)
