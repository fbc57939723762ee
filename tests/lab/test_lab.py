"""The Lab facade on a real embedded cluster: connect, build, apply and wait, look, change, reset,
and the errors a learner meets on the way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import connect
from labkit.clusters.embedded import EmbeddedCluster
from labkit.errors import KubectlError, ManifestError, NotReadyError, UsageError
from labkit.lab import Lab

SERVER = """\
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ.get("HOSTNAME", "?").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

print("serving on", os.environ["PORT"], flush=True)
HTTPServer(("", int(os.environ["PORT"])), Hello).serve_forever()
"""
DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
COPY server.py .
CMD ["python", "server.py"]
"""
APP = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: hello
        image: hello:1.0
        ports: [{containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}  # ready once it listens
---
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector: {app: hello}
  ports: [{port: 80, targetPort: 8080}]
"""
WORKERS = {"labkit-worker", "labkit-worker2"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A LABKIT_HOME of its own, whose cluster is deleted at the end."""
    path = tmp_path_factory.mktemp("lab-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_HOME", str(path))
        mp.delenv("LABKIT_TARGET", raising=False)
        yield path
    EmbeddedCluster(home=path).down(delete=True)


@pytest.fixture(scope="module")
def lab(home: Path) -> Lab:
    """connect() starts the embedded cluster when it is absent, and reuses it when it runs."""
    assert EmbeddedCluster(home=home).status().state == "absent"
    first = connect("embedded")
    pid = EmbeddedCluster(home=home).running_pid()
    assert pid is not None
    again = connect()  # auto, with nothing configured: the embedded cluster, the same daemon
    assert again.target == "embedded" and EmbeddedCluster(home=home).running_pid() == pid
    assert first.status().nodes == ["labkit-control-plane", *sorted(WORKERS)]
    return first


@pytest.fixture(scope="module")
def image(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    context = tmp_path_factory.mktemp("hello")
    (context / "server.py").write_text(SERVER)
    steps: list[str] = []
    result = lab.build(DOCKERFILE, "hello:1.0", context, progress=lambda s: steps.append(s.state))
    assert result.tag == "hello:1.0" and result.builder == "embedded" and "done" in steps
    return result.tag


def test_a_built_image_deploys_serves_scales_heals_and_resets(lab: Lab, image: str) -> None:
    lines: list[str] = []
    applied = lab.apply(APP, progress=lines.append)
    assert [str(a) for a in applied] == ["deployment.apps/hello created", "service/hello created"]
    assert all(a.ready for a in applied)
    assert 'deployment "hello" successfully rolled out' in lines
    assert lines[0].startswith('Waiting for deployment "hello" rollout to finish')
    assert [str(a) for a in lab.apply(APP)] == ["deployment.apps/hello unchanged", "service/hello unchanged"]

    pods = lab.pods()
    assert list(pods.columns) == ["name", "ready", "status", "restarts", "node", "ip", "age"]
    assert list(pods["ready"]) == ["1/1", "1/1"] and list(pods["status"]) == ["Running", "Running"]
    assert set(pods["node"]) == WORKERS
    nodes = lab.nodes().set_index("name")
    assert nodes.loc["labkit-control-plane", "roles"] == "control-plane"
    assert nodes["pods"].to_dict() == {"labkit-control-plane": 0, "labkit-worker": 1, "labkit-worker2": 1}
    services = lab.services().set_index("name")
    assert services.loc["hello", "ports"] == "80/TCP" and services.loc["hello", "endpoints"] == 2
    events = lab.events()
    assert list(events.columns) == ["last_seen", "type", "reason", "object", "message"]
    assert "deployment/hello" in set(events["object"])

    served = lab.traffic("hello", 20).frame
    assert set(served["pod"]) == set(pods["name"]) and served["status"].eq(200).all(), served.to_string()

    lab.scale("hello", 3)
    lab.wait_ready("deployment/hello", timeout=30)
    assert len(lab.pods()) == 3

    victim = lab.pods()["name"].iloc[0]
    lab.kill(victim)
    _until(lambda: victim not in set(lab.pods()["name"]) and len(lab.pods()) == 3)  # replaced
    lab.wait_ready("deploy/hello", timeout=30)
    after = lab.pods()
    assert list(after["ready"]) == ["1/1"] * 3
    _until(lambda: "serving on" in lab.logs(after["name"].iloc[0]))  # Ready may come before the print
    assert "hello" in lab.kubectl("get deployments -o name")

    lab.stop_node("labkit-worker")
    _until(lambda: lab.nodes().set_index("name").loc["labkit-worker", "status"] == "NotReady")
    lab.start_node("labkit-worker")
    assert lab.nodes().set_index("name").loc["labkit-worker", "status"] == "Ready"

    assert lab.reset() == ["service/hello", "deployment.apps/hello"]
    assert lab.services()["name"].tolist() == ["kubernetes"]
    _until(lambda: lab.pods().empty)


def _until(check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_yaml_syntax_error_names_its_line(lab: Lab) -> None:
    broken = APP.replace("  replicas: 2", "  replicas: 2\n   strategy: {}")
    with pytest.raises(ManifestError, match=r"^YAML syntax error on line 7") as err:
        lab.apply(broken)
    assert err.value.line == 7


def test_an_invalid_manifest_names_the_fields_the_api_server_rejected(lab: Lab) -> None:
    bad = APP.replace("replicas: 2", "replicas: -1").replace("image: hello:1.0", "image: ''")
    with pytest.raises(ManifestError) as err:
        lab.apply(bad)
    message = err.value.message
    assert message.startswith('Deployment "hello" is invalid (document 1, line 1):'), message
    assert "  spec.replicas: Invalid value: -1: must be greater than or equal to 0" in message
    assert "spec.template.spec.containers[0].image: Required value" in message


def test_an_unknown_field_and_an_unknown_kind_get_hints(lab: Lab) -> None:
    with pytest.raises(ManifestError, match="unknown field") as err:
        lab.apply(APP.replace("  replicas: 2", "  replica: 2"))
    assert "misspelt" in err.value.hint
    with pytest.raises(ManifestError, match='unknown kind "Deploymnet" in apps/v1') as err:
        lab.apply(APP.replace("kind: Deployment", "kind: Deploymnet"))
    assert 'did you mean "Deployment"?' in err.value.hint
    assert lab.services()["name"].tolist() == ["kubernetes"]  # nothing was applied


def test_a_missing_image_times_out_naming_the_pods_and_why(lab: Lab) -> None:
    missing = APP.replace("image: hello:1.0", "image: nothere:1.0").replace("hello", "ghost")
    with pytest.raises(NotReadyError) as err:
        lab.apply(missing, timeout=3)
    message = err.value.message
    assert message.startswith("deployment/ghost was not ready within 3 s: Waiting for deployment"), message
    assert "pods not ready:" in message
    assert len(err.value.pods) == 2
    assert set(err.value.pods.values()) <= {"ErrImagePull", "ImagePullBackOff"}, err.value.pods
    assert "nothere:1.0" in message and "last warning: Failed:" in message
    assert "build it with lab.build" in err.value.hint
    lab.delete(missing)
    assert lab.pods().empty or set(lab.pods()["name"]).isdisjoint(err.value.pods)


def test_bad_requests_say_what_exists(lab: Lab) -> None:
    with pytest.raises(UsageError, match='cluster "labkit" has no node "labkit-worker9"'):
        lab.stop_node("labkit-worker9")
    with pytest.raises(UsageError, match='deployment "nope" not found'):
        lab.scale("nope", 2)
    with pytest.raises(KubectlError, match=r'deployments\.apps "nope" not found'):
        lab.kubectl(["get", "deployment", "nope"])
    with pytest.raises(UsageError, match="cannot wait for"):
        lab.wait_ready("web")


def test_kubectl_says_when_there_is_nothing_to_show(lab: Lab) -> None:
    lab.use("empty-ns")
    try:
        assert lab.kubectl("get pods").strip() == "No resources found in empty-ns namespace."
    finally:
        lab.use("default")
        lab.kubectl("delete namespace empty-ns --wait=false")
