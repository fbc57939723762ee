"""Pods and RUN steps behave like containers: the image as /, fixed ports, names, a safe host.

Apps and manifests here are written as for a real cluster: absolute paths, fixed ports on all
addresses, no containerPort, Services with port == targetPort, calls by Service name. They
run unchanged on the embedded cluster, isolated by bubblewrap or PRoot.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.pods_support import Kube, wait_until
from tests.conftest import ROOT, Cluster, labkit

NODE_FIXTURE = ROOT / ".labkit-test" / "node-course"  # node_modules installed by .ci/test


def build(cluster: Cluster, tag: str, context: Path) -> str:
    """``labkit build`` an image with the daemonless builder; its output."""
    done = labkit("build", "-t", tag, str(context), home=cluster.home, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def deployment(name: str, image: str, replicas: int = 1, **container: Any) -> dict[str, Any]:
    """A Deployment as a course writes it: no containerPort."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image, **container}]},
            },
        },
    }


def service(name: str, app: str, port: int, node_port: int | None = None) -> dict[str, Any]:
    """A Service whose port equals its targetPort."""
    spec: dict[str, Any] = {"selector": {"app": app}, "ports": [{"port": port, "targetPort": port}]}
    if node_port:
        spec["type"] = "NodePort"
        spec["ports"][0]["nodePort"] = node_port
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def proxied(kube: Kube, service_name: str, port: int, path: str) -> Any:
    """GET through the API server's service proxy (works on any cluster)."""
    return kube.get(f"services/{service_name}:{port}/proxy{path}")


def ready_pods(kube: Kube, app: str, count: int) -> list[dict[str, Any]]:
    def ready(pods: list[dict[str, Any]]) -> bool:
        return len(pods) == count and all(
            any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
            for p in pods
        )

    return wait_until(f"{count} ready {app} pods", lambda: kube.pods(f"app={app}"), ready, timeout=30)


def until_answers(what: str, fetch: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fetch()
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never answered") from None
            time.sleep(0.2)


# -- the course's shape, in Python -------------------------------------------------------------

POSTS_PY = """\
import json, os, socket
from http.server import BaseHTTPRequestHandler, HTTPServer

class Posts(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pod": socket.gethostname(), "cwd": os.getcwd(),
                           "config": open("/etc/posts/config.json").read()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("", 8080), Posts).serve_forever()
"""
CALLER_PY = """\
import json, socket, sys, time, urllib.request
seen = set()
for attempt in range(200):
    try:
        with urllib.request.urlopen("http://posts-srv:8080/", timeout=3) as r:
            seen.add(json.loads(r.read())["pod"])
    except OSError as e:
        print("retry", e, flush=True)
        time.sleep(0.2)
    if len(seen) == 2:
        break
print(json.dumps({"me": socket.gethostname(), "ip": socket.gethostbyname("posts-srv"),
                  "full": socket.gethostbyname("posts-srv.%s.svc.cluster.local" % sys.argv[1]),
                  "seen": sorted(seen)}), flush=True)
"""


def test_a_python_app_on_a_fixed_port_runs_two_replicas_behind_a_service(kube: Kube, tmp_path: Path) -> None:
    context = tmp_path / "posts"
    context.mkdir()
    (context / "server.py").write_text(POSTS_PY)
    (context / "config.json").write_text('{"greeting": "hi"}')
    (context / "Dockerfile").write_text(
        "FROM python:3.12-slim\nCOPY server.py /app/server.py\nCOPY config.json /etc/posts/config.json\n"
        "RUN echo built > /app/stamp\n"
        'CMD ["python", "/app/server.py"]\n'
    )
    build(kube.cluster, "pyposts:1.0", context)
    kube.apply(deployment("posts", "pyposts:1.0", replicas=2), service("posts-srv", "posts", 8080))
    pods = ready_pods(kube, "posts", 2)
    names = {p["metadata"]["name"] for p in pods}
    answer = until_answers("posts-srv", lambda: proxied(kube, "posts-srv", 8080, "/"))
    assert isinstance(answer, dict) and "pod" in answer, answer
    assert (
        answer["pod"] in names and answer["cwd"] == "/" and json.loads(answer["config"]) == {"greeting": "hi"}
    )
    caller = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "caller"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "caller",
                    "image": "python:3.12-slim",
                    "command": ["python", "-c", CALLER_PY, kube.namespace],
                }
            ],
        },
    }
    kube.apply(caller)
    wait_until(
        "the caller to finish",
        lambda: kube.pod("caller"),
        lambda p: p["status"].get("phase") == "Succeeded",
        60,
    )
    result = json.loads(kube("logs", "caller").stdout.strip().splitlines()[-1])
    svc = kube.get("services/posts-srv")
    assert result["me"] == "caller"
    assert result["ip"] == result["full"] == svc["spec"]["clusterIP"]
    assert set(result["seen"]) == names  # both replicas serve, each on 8080 of its own pod IP


# -- the course's shape, in Node -----------------------------------------------------------------

POSTS_JS = """\
const express = null; // the course uses express; plain http keeps the fixture small
const http = require("http");
const os = require("os");
const axios = require("axios");
const posts = {};
http.createServer(async (req, res) => {
  if (req.method === "POST" && req.url === "/posts") {
    const id = String(Object.keys(posts).length + 1);
    posts[id] = { id, title: "hello" };
    await axios.post("http://event-bus-srv:4005/events", { type: "PostCreated", data: posts[id] });
    res.writeHead(201, { "Content-Type": "application/json" });
    return res.end(JSON.stringify({ pod: os.hostname(), post: posts[id] }));
  }
  if (req.method === "POST" && req.url === "/events") { res.writeHead(200); return res.end("{}"); }
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ pod: os.hostname(), posts, file: __filename }));
}).listen(4000);
"""
QUERY_JS = """\
const http = require("http");
const os = require("os");
const seen = [];
http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    if (req.method === "POST" && req.url === "/events") seen.push(JSON.parse(body));
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ pod: os.hostname(), events: seen }));
  });
}).listen(4002);
"""
BUS_JS = """\
const http = require("http");
const dns = require("dns");
function httpPost(host, port, path, data) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, method: "POST",
      headers: { "Content-Type": "application/json" } }, (res) => { res.resume(); res.on("end", resolve); });
    req.on("error", reject);
    req.end(data);
  });
}
http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", async () => {
    if (req.url === "/lookup") {
      return dns.lookup("query-srv", (err, address) => {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ err: err && err.code, address }));
      });
    }
    try {
      await fetch("http://posts-srv:4000/events", { method: "POST", body,
        headers: { "Content-Type": "application/json" } });
      await httpPost("query-srv", 4002, "/events", body);
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end('{"status":"OK"}');
    } catch (e) {
      res.writeHead(500, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: String(e) }));
    }
  });
}).listen(4005);
"""
NODE_DOCKERFILE = """\
FROM node:20-alpine
WORKDIR /app
COPY package.json ./
COPY node_modules ./node_modules
COPY index.js ./
CMD ["npm", "start"]
"""


def node_app(directory: Path, source: str) -> Path:
    """A course-style Node service: package.json with `npm start` through nodemon."""
    if not (NODE_FIXTURE / "node_modules" / "axios").is_dir():
        pytest.fail(f"{NODE_FIXTURE}/node_modules has no axios: run .ci/test, which installs it")
    directory.mkdir(parents=True)
    package = {"name": directory.name, "version": "1.0.0", "scripts": {"start": "nodemon --quiet index.js"}}
    (directory / "package.json").write_text(json.dumps(package))
    (directory / "index.js").write_text(source)
    (directory / "Dockerfile").write_text(NODE_DOCKERFILE)
    shutil.copytree(NODE_FIXTURE / "node_modules", directory / "node_modules", symlinks=True)
    return directory


def test_the_node_course_services_call_each_other_by_name_on_fixed_ports(kube: Kube, tmp_path: Path) -> None:
    for name, source in (("posts", POSTS_JS), ("query", QUERY_JS), ("event-bus", BUS_JS)):
        build(kube.cluster, f"course-{name}:0.0.1", node_app(tmp_path / name, source))
    node_port = 30000 + int(hashlib.sha256(kube.namespace.encode()).hexdigest(), 16) % 2700
    kube.apply(
        deployment("posts", "course-posts:0.0.1", replicas=2),
        deployment("query", "course-query:0.0.1"),
        deployment("event-bus", "course-event-bus:0.0.1"),
        service("posts-srv", "posts", 4000),
        service("posts-nodeport", "posts", 4000, node_port),
        service("query-srv", "query", 4002),
        service("event-bus-srv", "event-bus", 4005),
    )
    posts = {p["metadata"]["name"] for p in ready_pods(kube, "posts", 2)}
    ready_pods(kube, "query", 1)
    ready_pods(kube, "event-bus", 1)
    answer = until_answers("posts-srv", lambda: proxied(kube, "posts-srv", 4000, "/"))
    assert answer["file"] == "/app/index.js" and answer["pod"] in posts
    lookup = until_answers("event-bus-srv", lambda: proxied(kube, "event-bus-srv", 4005, "/lookup"))
    assert lookup == {"err": None, "address": kube.get("services/query-srv")["spec"]["clusterIP"]}

    def both_serve() -> set[str]:
        """40 requests through the NodePort, as a learner's browser sends them; a replica that
        is Ready but not yet listening (no readinessProbe, as in the course) resets them."""
        served = set()
        for _ in range(40):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{node_port}/", timeout=5) as r:
                    served.add(json.loads(r.read())["pod"])
            except OSError as e:
                raise AssertionError(f"through the NodePort: {e}") from e
        assert served == posts, served  # both replicas serve
        return served

    until_answers("both replicas through the NodePort", both_serve)
    request = urllib.request.Request(f"http://127.0.0.1:{node_port}/posts", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10) as r:
        created = json.loads(r.read())
    assert created["post"]["title"] == "hello"

    def query_has_it() -> Any:
        events = proxied(kube, "query-srv", 4002, "/")["events"]
        assert events, "no event yet"
        return events

    events = until_answers("the event in query", query_has_it, timeout=15)
    assert events[0] == {"type": "PostCreated", "data": created["post"]}


# -- stock images and host safety ----------------------------------------------------------------


def test_a_stock_python_image_runs_as_a_pod(kube: Kube) -> None:
    kube("run", "py", "--image=python:3.12-slim", "--restart=Never", "--", "python", "-c", "print(6 * 7)")
    pod = wait_until(
        "py to complete",
        lambda: kube.pod("py"),
        lambda p: p["status"].get("phase") in ("Succeeded", "Failed"),
    )
    assert pod["status"]["phase"] == "Succeeded", json.dumps(pod["status"])
    assert kube("logs", "py").stdout == "42\n"
    # the tag asks for 3.12: a machine with another Python says which one the container got
    events = kube.get(f"/api/v1/namespaces/{kube.namespace}/events?fieldSelector=involvedObject.name%3Dpy")
    notes = [e["message"] for e in events["items"] if e["reason"] == "ImageVersion"]
    differs = not platform.python_version().startswith("3.12.")
    assert bool(notes) == differs, notes
    if differs:
        assert f"this machine has Python {platform.python_version()}" in notes[0]


# host paths a container borrows read-only; a new file in /etc itself lands in the container's
# own /etc (its writable layer), as in Docker, and never on the host
TARGETS = ("/etc/ssl/labkit-marker", "/usr/labkit-marker", "/usr/bin/labkit-marker")


def host_snapshot(paths: list[Path]) -> dict[str, Any]:
    """What the host has at the paths a container tried to write, and what the directories hold."""
    out: dict[str, Any] = {}
    for path in paths:
        out[str(path)] = path.exists()
    for directory in (Path("/etc"), Path("/usr/bin"), Path.home()):
        out[f"{directory}/"] = sorted(os.listdir(directory))
    return out


def safety_script(paths: list[str]) -> str:
    checks = "\n".join(
        f'if ( echo x > "{p}" ) 2>/dev/null; then echo "WROTE {p}"; else echo "REFUSED {p}"; fi'
        for p in paths
    )
    return checks + '\nls / > /tmp/root-listing; echo "ROOT $(ls / | tr "\\n" " ")"\n'


def test_containers_and_run_steps_cannot_write_the_host(kube: Kube, tmp_path: Path) -> None:
    home = Path.home()
    state = kube.cluster.home
    paths = [
        *TARGETS,
        "/etc/labkit-marker",
        f"{home}/labkit-marker",
        f"{state}/labkit-marker",
        f"{state}/clusters/labkit-marker",
    ]
    before = host_snapshot([Path(p) for p in paths])
    script = safety_script(paths)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "intruder"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "sh", "image": "busybox:1.36", "command": ["sh", "-c", script]}],
        },
    }
    kube.apply(pod)
    wait_until(
        "intruder to finish",
        lambda: kube.pod("intruder"),
        lambda p: p["status"].get("phase") == "Succeeded",
        30,
    )
    log = kube("logs", "intruder").stdout
    context = tmp_path / "bad"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM busybox\n" + "".join(f"RUN ( echo x > {p} ) 2>/dev/null || echo REFUSED {p}\n" for p in paths)
    )
    built = build(kube.cluster, "intruder:1.0", context)
    assert host_snapshot([Path(p) for p in paths]) == before  # the host is unchanged
    for p in paths:
        if p not in TARGETS:
            continue  # the container's own /etc, or not visible inside: the host is untouched (above)
        assert f"REFUSED {p}" in log, log
        assert f"REFUSED {p}" in built, built
    listing = log.split("ROOT ", 1)[1].split()
    assert ("home" not in listing and str(state).split("/")[1] not in listing) or str(state).startswith(
        "/tmp"
    )
    assert not any(Path(p).exists() for p in paths)


def test_the_isolation_in_use_is_shown(kube: Kube) -> None:
    status = labkit("cluster", "status", "--name", kube.cluster.name, home=kube.cluster.home).stdout
    assert "isolation:" in status and any(tool in status for tool in ("bubblewrap", "PRoot")), status


def test_privileged_ports_and_localhost_inside_a_pod(kube: Kube) -> None:
    """An app on port 80 needs no root; a second container of the pod reaches it on localhost."""
    script = textwrap.dedent(
        """
        import http.server, socket
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(socket.gethostname().encode())
        http.server.HTTPServer(("", 80), H).serve_forever()
        """
    )
    # The web container may not listen yet when the probe starts: retry quietly, then say so once.
    fetch = (
        "python3 -c \"import urllib.request as u; print(u.urlopen('http://localhost:80/').read().decode())\""
    )
    probe = (
        f"for i in $(seq 50); do {fetch} 2>/dev/null && {{ ok=1; break; }}; sleep 0.2; done;"
        ' [ -n "$ok" ] || echo no answer; sleep 3600'
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web80", "labels": {"app": "web80"}},
        "spec": {
            "containers": [
                {"name": "web", "image": "python:3.12", "command": ["python3", "-c", script]},
                {"name": "probe", "image": "python:3.12", "command": ["sh", "-c", probe]},
            ]
        },
    }
    kube.apply(pod, service("web80", "web80", 80))
    wait_until("web80 to run", lambda: kube.pod("web80"), lambda p: p["status"].get("phase") == "Running")
    log = wait_until("the probe's answer", lambda: kube("logs", "web80", "-c", "probe").stdout, bool, 20)
    assert log.strip().splitlines()[0] == "web80"
    assert until_answers("web80 service", lambda: kube.get("services/web80:80/proxy/")) is not None


# -- volumes and in-cluster config -------------------------------------------------------------

VOLUMES_PY = """\
import json, os, ssl, time, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
ns = open(sa + "/namespace").read()
context = ssl.create_default_context(cafile=sa + "/ca.crt")  # in-cluster config, as client-go's
url = "https://%s:%s/api/v1/namespaces/%s/pods" % (
    os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"], ns)
request = urllib.request.Request(url, headers={"Authorization": "Bearer " + open(sa + "/token").read()})
pods = json.load(urllib.request.urlopen(request, context=context, timeout=10))
first = open("/etc/app/conf/app.json").read()
print(json.dumps({
    "pods": [p["metadata"]["name"] for p in pods["items"]],
    "config": first, "keys": sorted(os.listdir("/etc/app/conf")),
    "subpath": open("/etc/motd").read(),
    "secret": open("/etc/creds/password").read(),
    "secret_mode": oct(os.stat("/etc/creds/password").st_mode & 0o777),
    "name": open("/etc/podinfo/name").read(), "labels": open("/etc/podinfo/labels").read(),
    "init": open("/shared/from-init").read(),
}), flush=True)
for _ in range(600):
    now = open("/etc/app/conf/app.json").read()
    if now != first:
        print("UPDATED " + now + " motd " + open("/etc/motd").read(), flush=True)
        break
    time.sleep(0.1)
open("/dev/termination-log", "w").write("bye from " + ns)
"""


def test_volumes_in_cluster_config_and_the_termination_message(kube: Kube) -> None:
    settings = {"app.json": '{"color": "blue"}', "motd": "hello", "script.py": VOLUMES_PY}
    kube.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": settings},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"password": "s3cret"},
        },
    )
    volumes = [
        {
            "name": "code",
            "configMap": {"name": "settings", "items": [{"key": "script.py", "path": "main.py"}]},
        },
        {
            "name": "conf",
            "configMap": {"name": "settings", "items": [{"key": "app.json", "path": "conf/app.json"}]},
        },
        {"name": "motd", "configMap": {"name": "settings"}},
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {"name": "shared", "emptyDir": {}},
        {
            "name": "podinfo",
            "downwardAPI": {
                "items": [
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                ]
            },
        },
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vols", "labels": {"app": "vols"}},
        "spec": {
            "restartPolicy": "Never",
            "volumes": volumes,
            "initContainers": [
                {
                    "name": "prepare",
                    "image": "busybox",
                    "command": ["sh", "-c", "echo made-by-init > /shared/from-init"],
                    "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.12-slim",
                    "command": ["python", "-u", "/code/main.py"],
                    "volumeMounts": [
                        {"name": "code", "mountPath": "/code"},
                        {"name": "conf", "mountPath": "/etc/app"},
                        {"name": "motd", "mountPath": "/etc/motd", "subPath": "motd"},
                        {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
                        {"name": "shared", "mountPath": "/shared"},
                        {"name": "podinfo", "mountPath": "/etc/podinfo"},
                    ],
                }
            ],
        },
    }
    kube.apply(pod)
    logs = wait_until(
        "the pod's report", lambda: kube("logs", "vols", "-c", "main", check=False).stdout, lambda t: "{" in t
    )
    seen = json.loads(logs.splitlines()[0])
    assert seen["pods"] == ["vols"], seen  # the API server, reached with the pod's own token and CA
    assert (seen["config"], seen["keys"], seen["subpath"]) == ('{"color": "blue"}', ["app.json"], "hello")
    assert (seen["secret"], seen["secret_mode"]) == ("s3cret", "0o400")
    assert (seen["name"], seen["labels"]) == ("vols", 'app="vols"')
    assert seen["init"] == "made-by-init\n"

    # a configMap volume follows its ConfigMap; a subPath mount keeps its first copy (as upstream)
    kube(
        "patch",
        "configmap",
        "settings",
        "-p",
        json.dumps({"data": {"app.json": '{"color": "red"}', "motd": "x"}}),
    )
    done = wait_until(
        "the pod to finish",
        lambda: kube.pod("vols"),
        lambda p: p["status"].get("phase") in ("Succeeded", "Failed"),
    )
    assert 'UPDATED {"color": "red"} motd hello' in kube("logs", "vols", "-c", "main").stdout
    (state,) = [s["state"]["terminated"] for s in done["status"]["containerStatuses"]]
    assert (state["exitCode"], state["message"]) == (0, f"bye from {kube.namespace}")


def test_a_sub_path_symlink_cannot_lead_to_the_host(kube: Kube) -> None:
    """A container plants a symlink to / in an emptyDir; a subPath through it is refused."""
    shared = [{"name": "shared", "mountPath": "/shared"}]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "escape"},
        "spec": {
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "initContainers": [
                {
                    "name": "plant",
                    "image": "busybox",
                    "command": ["ln", "-s", "/", "/shared/host"],
                    "volumeMounts": shared,
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "command": ["sh", "-c", "touch /mnt/labkit-escaped; sleep 30"],
                    "volumeMounts": [{"name": "shared", "mountPath": "/mnt", "subPath": "host"}],
                }
            ],
        },
    }
    kube.apply(pod)
    waiting = wait_until(
        "the container refused",
        lambda: kube.pod("escape"),
        lambda p: any(
            (s.get("state", {}).get("waiting") or {}).get("reason") == "CreateContainerConfigError"
            for s in p["status"].get("containerStatuses") or []
        ),
        timeout=20,
    )
    (state,) = [s["state"]["waiting"] for s in waiting["status"]["containerStatuses"]]
    assert 'subPath "host" leads outside its volume "shared"' in state["message"]
    assert not Path("/labkit-escaped").exists()


def test_a_node_major_this_machine_lacks_is_pulled_from_the_registry(kube: Kube) -> None:
    """``node:<major>`` runs that Node.js, fetched once as an image pull would."""
    node = shutil.which("node")
    have = subprocess.run([node, "--version"], capture_output=True, text=True).stdout if node else ""
    want = "24" if have.startswith("v22.") else "22"
    kube(
        "run",
        "nd",
        f"--image=node:{want}-alpine",
        "--restart=Never",
        "--",
        "node",
        "-e",
        "console.log(process.versions.node)",
    )
    pod = wait_until(
        "nd to complete",
        lambda: kube.pod("nd"),
        lambda p: p["status"].get("phase") in ("Succeeded", "Failed"),
        timeout=180,  # the first pull downloads the wheel (about 60 MB)
    )
    assert pod["status"]["phase"] == "Succeeded", json.dumps(pod["status"])
    assert kube("logs", "nd").stdout.startswith(f"{want}."), kube("logs", "nd").stdout
    events = kube.get(f"/api/v1/namespaces/{kube.namespace}/events?fieldSelector=involvedObject.name%3Dnd")
    messages = [e["message"] for e in events["items"]]
    assert any(m.startswith(f'Successfully pulled image "node:{want}-alpine"') for m in messages), messages
    assert not [e for e in events["items"] if e["reason"] == "ImageVersion"], messages
