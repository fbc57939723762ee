"""kubectl exec, cp and port-forward, and the Python client's stream() and portforward(), against
a real embedded cluster: the streams, the exit codes, upstream's errors, and what must not
happen (a command left running, a daemon that grows or stops answering)."""

from __future__ import annotations

import json
import re
import select
import shlex
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import websocket
import yaml
from kubernetes import client, config
from kubernetes.stream import portforward, stream

from tests.cluster.pods_support import BUSYBOX, app_pod, echo_deployment, running_and_ready, wait_until
from tests.conftest import KUBECTLS, Cluster

PYTHON = "python:3.11"
SERVER = ["python", "-m", "http.server", "8080"]
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


@pytest.fixture(scope="module")
def lab(cluster: Cluster) -> Iterator[dict[str, Any]]:
    """A namespace with a busybox pod, a Python web server (with a Service and workingDir),
    a two-container pod and a Deployment, all Running; the Python client's API for it."""
    ns = f"s-{uuid.uuid4().hex[:8]}"
    assert cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    web = app_pod("web", PYTHON, command=SERVER, workingDir="/srv", env=[{"name": "GREETING", "value": "hi"}])
    web["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    two = app_pod("two", BUSYBOX, command=["sleep", "3600"])
    two["spec"]["containers"].append({"name": "side", "image": BUSYBOX, "command": ["sleep", "3600"]})
    objects = [
        app_pod("bb", BUSYBOX, command=["sleep", "3600"]),
        web,
        two,
        app_pod("done", BUSYBOX, restart_policy="Never", command=["true"]),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        echo_deployment("echo", replicas=1),
    ]
    subprocess.run(
        [KUBECTLS["venv"], "-n", ns, "apply", "-f", "-"],
        input=yaml.safe_dump_all(objects),
        env=cluster.env(),
        check=True,
        capture_output=True,
        text=True,
    )
    for name in ("bb", "web", "two"):
        wait_until(f"pod {name} ready", lambda n=name: _pod(cluster, ns, n), running_and_ready, timeout=60)
    wait_until("web listening", lambda: _exec_code(cluster, ns, "web", _probe(8080)), lambda c: c == 0, 30)
    wait_until(
        "done completed",
        lambda: _pod(cluster, ns, "done"),
        lambda p: p.get("status", {}).get("phase") == "Succeeded",
        timeout=60,
    )
    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    yield {"ns": ns, "api": api, "cluster": cluster}
    cluster.request("DELETE", f"/api/v1/namespaces/{ns}")


def _pod(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(cluster.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")[1])


def _probe(port: int) -> str:
    return f"import urllib.request as u; u.urlopen('http://localhost:{port}/', timeout=2)"


def _exec_code(cluster: Cluster, ns: str, pod: str, code: str) -> int:
    done = subprocess.run(
        [KUBECTLS["venv"], "-n", ns, "exec", pod, "--", "python", "-c", code],
        env=cluster.env(),
        capture_output=True,
        timeout=30,
    )
    return done.returncode


def _run(kubectl: Any, ns: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return kubectl("-n", ns, *args, check=False, **kw)


# -- exec with kubectl ------------------------------------------------------------------------


def test_exec_gives_stdout_stderr_and_the_exit_code(kubectl: Any, lab: dict[str, Any]) -> None:
    done = _run(kubectl, lab["ns"], "exec", "bb", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3
    assert done.stdout == "out\n"
    assert "err\n" in done.stderr
    assert "command terminated with exit code 3" in done.stderr


def test_exec_passes_stdin_to_the_end(kubectl: Any, lab: dict[str, Any]) -> None:
    done = _run(kubectl, lab["ns"], "exec", "-i", "bb", "--", "sh", "-c", "wc -l", input="a\nb\nc\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"


def test_exec_runs_inside_the_container(kubectl: Any, lab: dict[str, Any]) -> None:
    """The command sees the container's files, environment, working directory and network."""
    script = (
        "import os, socket, urllib.request as u; "
        "print(open('/etc/hostname').read().strip(), os.getcwd(), os.environ.get('GREETING'), "
        "os.path.exists('/work'), os.path.exists('/srv'), "
        "u.urlopen('http://localhost:8080/').status)"
    )
    done = _run(kubectl, lab["ns"], "exec", "web", "--", "python", "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["web", "/srv", "hi", "False", "True", "200"]


def test_exec_in_one_container_of_two(kubectl: Any, lab: dict[str, Any]) -> None:
    ns = lab["ns"]
    assert _run(kubectl, ns, "exec", "two", "-c", "side", "--", "touch", "/tmp/side-was-here").returncode == 0
    mine = _run(kubectl, ns, "exec", "two", "-c", "side", "--", "ls", "/tmp")
    other = _run(kubectl, ns, "exec", "two", "-c", "app", "--", "ls", "/tmp")
    assert "side-was-here" in mine.stdout
    assert "side-was-here" not in other.stdout  # each container has its own filesystem


def test_exec_errors_are_upstreams(kubectl: Any, lab: dict[str, Any]) -> None:
    ns = lab["ns"]
    missing = _run(kubectl, ns, "exec", "bb", "--", "no-such-program")
    assert missing.returncode == 127
    assert 'exec: "no-such-program": executable file not found in $PATH' in missing.stdout + missing.stderr
    unknown = _run(kubectl, ns, "exec", "bb", "-c", "nope", "--", "true")
    assert unknown.returncode == 1
    assert "container nope is not valid for pod bb" in unknown.stderr
    completed = _run(kubectl, ns, "exec", "done", "--", "true")
    assert completed.returncode == 1
    assert "cannot exec into a container in a completed pod; current phase is Succeeded" in completed.stderr
    assert _run(kubectl, ns, "get", "pods").returncode == 0  # and the cluster is fine


def test_cp_both_ways(kubectl: Any, lab: dict[str, Any], tmp_path: Path) -> None:
    ns = lab["ns"]
    (tmp_path / "notes.txt").write_text("from the host\n")
    assert _run(kubectl, ns, "cp", str(tmp_path / "notes.txt"), "bb:/tmp/notes.txt").returncode == 0
    assert _run(kubectl, ns, "exec", "bb", "--", "cat", "/tmp/notes.txt").stdout == "from the host\n"
    _run(kubectl, ns, "exec", "bb", "--", "sh", "-c", "echo from the pod > /tmp/back.txt")
    copied = _run(kubectl, ns, "cp", "bb:/tmp/back.txt", str(tmp_path / "back.txt"))
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "back.txt").read_text() == "from the pod\n"


# -- attach ---------------------------------------------------------------------------------


def test_run_interactive_and_remove(kubectl: Any, lab: dict[str, Any]) -> None:
    """``kubectl run -i --rm``: the script goes to the container's stdin, its output comes back,
    kubectl exits with the container's code and deletes the pod."""
    name = f"once-{kubectl.version}"
    done = _run(
        kubectl, lab["ns"], "run", "-i", "--rm", name, f"--image={BUSYBOX}", "--restart=Never", "--", "sh",
        input="echo hello from $(hostname)\nexit 4\n", timeout=60,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert done.stdout.count(f"hello from {name}") == 1, done.stdout  # attached, not read back from logs
    assert "couldn't attach" not in done.stderr
    wait_until(
        "the pod deleted", lambda: _pod(lab["cluster"], lab["ns"], name).get("code"), lambda c: c == 404
    )


def test_run_with_a_terminal_gets_a_prompt(kubectl: Any, lab: dict[str, Any]) -> None:
    """``kubectl run -it --rm -- sh`` on a terminal (``script`` gives kubectl one): the container
    runs on a pseudo-terminal of its own, so the shell prompts, and its exit code comes back."""
    name = f"tty-{kubectl.version}"
    command = shlex.join(
        [KUBECTLS[kubectl.version], "-n", lab["ns"], "run", "-it", "--rm", name,
         f"--image={BUSYBOX}", "--restart=Never", "--", "sh"]
    )  # fmt: skip
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        input="tty\nexit 3\n", capture_output=True, text=True, env=lab["cluster"].env(), timeout=60,
    )  # fmt: skip
    # The first prompt may be printed before kubectl attaches (on any cluster: kubectl says "If
    # you don't see a command prompt, try pressing enter"); the one after `tty` always comes back.
    after_tty = done.stdout.split("/dev/", 1)[-1]
    assert "$ " in after_tty, done.stdout  # an interactive shell's prompt
    assert "/dev/console" in done.stdout or "/dev/pts/" in done.stdout, done.stdout
    assert done.returncode == 3, done.stdout
    wait_until(
        "the pod deleted", lambda: _pod(lab["cluster"], lab["ns"], name).get("code"), lambda c: c == 404
    )


def test_attach_to_a_container_that_keeps_stdin_open(kubectl: Any, lab: dict[str, Any]) -> None:
    cluster, ns = lab["cluster"], lab["ns"]
    name = f"reader-{kubectl.version}"
    pod = app_pod(
        name, BUSYBOX, command=["sh", "-c", 'while read line; do echo "got $line"; done'], stdin=True
    )
    assert cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)[0] == 201
    wait_until(f"{name} ready", lambda: _pod(cluster, ns, name), running_and_ready, timeout=60)
    for word in ("first", "second"):  # detaching leaves the container running, stdin open
        attach = subprocess.Popen(
            [KUBECTLS[kubectl.version], "-n", ns, "attach", "-i", name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=cluster.env(),
        )  # fmt: skip
        assert attach.stdin is not None and attach.stdout is not None
        try:
            attach.stdin.write(f"{word}\n")
            attach.stdin.flush()
            ready, _, _ = select.select([attach.stdout], [], [], 15)
            assert ready, f"no output from the attached container for {word}"
            assert attach.stdout.readline() == f"got {word}\n"
        finally:
            attach.kill()  # Ctrl-C: the client goes, the container stays
            attach.wait()
        assert _pod(cluster, ns, name)["status"]["containerStatuses"][0]["restartCount"] == 0


# -- port-forward with kubectl ----------------------------------------------------------------


def _forward(
    kubectl: Any, lab: dict[str, Any], target: str, *ports: str
) -> tuple[subprocess.Popen[str], list[int]]:
    """Start ``kubectl port-forward --address 127.0.0.1 TARGET PORTS``; the local ports it chose."""
    command = [KUBECTLS[kubectl.version], "-n", lab["ns"], "port-forward", "--address", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, target, *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=lab["cluster"].env(),
    )
    local: list[int] = []
    deadline = time.monotonic() + 20
    assert proc.stdout is not None
    while len(local) < len(ports) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        found = FORWARDING.search(line)
        if found:
            local.append(int(found.group(1)))
    if len(local) < len(ports):
        proc.kill()
        raise AssertionError(f"kubectl port-forward did not start: {proc.communicate()[0]}")
    return proc, local


def _get(port: int, path: str = "/") -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return int(answer.status)


def test_port_forward_to_a_pod_a_service_and_a_deployment(kubectl: Any, lab: dict[str, Any]) -> None:
    for target, port in (("pod/web", ":8080"), ("svc/web", ":80"), ("deploy/echo", ":8080")):
        proc, (local,) = _forward(kubectl, lab, target, port)
        try:
            assert _get(local) == 200, target
            assert _get(local) == 200, target  # a second connection through the same tunnel
        finally:
            proc.kill()
            proc.wait()


def test_port_forward_several_ports_and_a_port_nobody_listens_on(kubectl: Any, lab: dict[str, Any]) -> None:
    proc, (web, nobody) = _forward(kubectl, lab, "pod/web", ":8080", ":9999")
    try:
        assert _get(web) == 200
        with pytest.raises(OSError):
            _get(nobody)
        time.sleep(0.5)
    finally:
        proc.kill()
        output = proc.communicate()[0]
    assert "error forwarding port 9999 to pod web" in output
    assert "connect: connection refused" in output
    assert _run(kubectl, lab["ns"], "get", "pod", "web").returncode == 0


def test_port_forward_traffic_is_recorded_as_pinned(kubectl: Any, lab: dict[str, Any]) -> None:
    cluster, ns = lab["cluster"], lab["ns"]
    records = f"/apis/traffic.labkit.dev/v1/namespaces/{ns}/services/web/records"
    cluster.request("DELETE", records)
    proc, (local,) = _forward(kubectl, lab, "pod/web", ":8080")
    try:
        for _ in range(3):
            assert _get(local) == 200
    finally:
        proc.kill()
        proc.wait()
    items = wait_until(
        "three finished records",
        lambda: cluster.request("GET", records)[1]["items"],
        lambda rs: len([r for r in rs if r["duration"] is not None]) >= 3,
    )
    assert {(r["via"], r["mode"], r["pod"]) for r in items} == {("port-forward", "pinned", "web")}
    assert all(r["bytes_out"] > 0 for r in items)


# -- the official Python client ---------------------------------------------------------------


def _stdout_until_closed(ws: Any, within: float = 10) -> str:
    """What a Python client's exec session printed, until it ends (or ``within`` seconds)."""
    output = ""
    deadline = time.monotonic() + within
    while ws.is_open() and time.monotonic() < deadline:
        ws.update(timeout=1)
        output += ws.read_stdout() if ws.peek_stdout() else ""
    return output


def test_python_client_exec_with_a_terminal_and_resize(lab: dict[str, Any]) -> None:
    ws = stream(
        lab["api"].connect_get_namespaced_pod_exec, "bb", lab["ns"],
        command=["sh", "-c", "read line; stty size; echo got $line"],
        stdin=True, stdout=True, stderr=False, tty=True, _preload_content=False,
    )  # fmt: skip
    ws.write_channel(4, json.dumps({"Width": 123, "Height": 45}))
    ws.write_stdin("ping\n")
    output = _stdout_until_closed(ws)
    assert "45 123" in output
    assert "got ping" in output
    assert ws.returncode == 0


def test_python_client_exec_exit_code_and_closing_stdin(lab: dict[str, Any]) -> None:
    api, ns = lab["api"], lab["ns"]
    failed = stream(
        api.connect_get_namespaced_pod_exec, "bb", ns, command=["sh", "-c", "echo e >&2; exit 7"],
        stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False,
    )  # fmt: skip
    failed.run_forever(timeout=10)
    assert failed.returncode == 7
    assert failed.read_stderr() == "e\n"
    cat = stream(
        api.connect_get_namespaced_pod_exec, "bb", ns, command=["cat"],
        stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False,
    )  # fmt: skip
    assert cat.subprotocol == "v5.channel.k8s.io"
    cat.write_stdin("to cat\n")
    assert cat.readline_stdout(timeout=5) == "to cat"
    cat.close_channel(0)  # end of stdin: cat ends
    cat.run_forever(timeout=10)
    assert not cat.is_open()
    assert cat.returncode == 0


def test_python_client_portforward(lab: dict[str, Any]) -> None:
    pod = _pod(lab["cluster"], lab["ns"], "web")
    forward = portforward(
        lab["api"].connect_get_namespaced_pod_portforward, "web", lab["ns"], ports="8080,9999"
    )
    web = forward.socket(8080)
    web.setblocking(True)
    web.sendall(b"GET / HTTP/1.0\r\n\r\n")
    answer = b""
    while chunk := web.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.0 200 OK")
    nobody = forward.socket(9999)
    nobody.setblocking(True)
    assert nobody.recv(10) == b""
    error = forward.error(9999)
    assert error is not None
    assert f"dial tcp4 {pod['status']['podIP']}:9999: connect: connection refused" in error
    forward.close()


# -- faults: nothing left behind, nothing that grows, nothing that stops the cluster -----------


def _host_processes_with(marker: str) -> list[str]:
    """The processes whose command line holds ``marker``: pid, state and command, for messages."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if marker.encode() in cmdline:
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                found.append(
                    f"{entry.name} {state} {cmdline.replace(bytes(1), b' ').decode(errors='replace')}"
                )
        except OSError:
            continue
    return found


def _rss_kib(cluster: Cluster) -> int:
    pid = int((cluster.home / "clusters" / cluster.name / "daemon.pid").read_text().split()[0])
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def test_a_client_that_goes_away_ends_its_command(lab: dict[str, Any]) -> None:
    marker = f"gone-{uuid.uuid4().hex[:8]}"
    ws = stream(
        lab["api"].connect_get_namespaced_pod_exec, "bb", lab["ns"],
        command=["sh", "-c", f"sleep 300; echo {marker}"],
        stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False,
    )  # fmt: skip
    wait_until("the command running", lambda: _host_processes_with(marker), bool)
    ws.sock.sock.close()  # the client vanishes mid-stream, without a close frame
    wait_until("the command gone", lambda: _host_processes_with(marker), lambda pids: not pids)


def test_endless_output_is_bounded_and_ends_with_its_client(lab: dict[str, Any]) -> None:
    cluster, ns = lab["cluster"], lab["ns"]
    marker = f"yes-{uuid.uuid4().hex[:8]}"
    before = _rss_kib(cluster)
    path = f"/api/v1/namespaces/{ns}/pods/bb/exec?command=yes&command={marker}&stdout=true"
    ws = _ws(cluster, path, "v5.channel.k8s.io")
    first = ws.recv()
    assert first[:1] == b"\x01" and marker.encode() in first
    time.sleep(3)  # the client reads nothing: the command must wait, not the daemon buffer it
    grown = _rss_kib(cluster) - before
    assert grown < 64 * 1024, f"the daemon grew by {grown} KiB while a client did not read"
    assert _host_processes_with(marker), "yes should still run, blocked on its full pipe"
    ws.close()
    wait_until("yes gone", lambda: _host_processes_with(marker), lambda pids: not pids)


def test_fifty_exec_sessions_at_once(lab: dict[str, Any]) -> None:
    api, ns = lab["api"], lab["ns"]

    def one(i: int) -> str:
        answer = stream(
            api.connect_get_namespaced_pod_exec, "bb", ns, command=["echo", f"session {i}"],
            stdin=False, stdout=True, stderr=True, tty=False,
        )  # fmt: skip
        return str(answer)

    with ThreadPoolExecutor(50) as pool:
        outputs = list(pool.map(one, range(50)))
    assert outputs == [f"session {i}\n" for i in range(50)]


def test_a_resize_storm_and_bad_resizes(lab: dict[str, Any]) -> None:
    ws = stream(
        lab["api"].connect_get_namespaced_pod_exec, "bb", lab["ns"],
        command=["sh", "-c", "read x; stty size"],
        stdin=True, stdout=True, stderr=False, tty=True, _preload_content=False,
    )  # fmt: skip
    for i in range(1000):
        ws.write_channel(4, json.dumps({"Width": 10 + i % 200, "Height": 5 + i % 50}))
    for bad in ("not json", '{"Width": "x"}', "[]", '{"Width": -1, "Height": 99999999}'):
        ws.write_channel(4, bad)
    ws.write_channel(4, json.dumps({"Width": 77, "Height": 22}))
    ws.write_stdin("go\n")
    output = _stdout_until_closed(ws)
    assert "22 77" in output


HOLDER = (
    "import socket, time\n"
    "server = socket.create_server(('', 8080))\n"
    "while True:\n"
    "    conn, _ = server.accept()\n"
    "    conn.sendall(b'hello')\n"
    "    time.sleep(600)\n"
)


def test_port_forward_to_a_pod_that_is_deleted(lab: dict[str, Any]) -> None:
    """The forwarded connection ends with its pod; the session and the cluster carry on."""
    cluster, ns, api = lab["cluster"], lab["ns"], lab["api"]
    name = f"brief-{uuid.uuid4().hex[:6]}"
    pod = app_pod(name, PYTHON, command=["python", "-c", HOLDER])
    pod["spec"]["terminationGracePeriodSeconds"] = 1
    assert cluster.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)[0] == 201
    wait_until("brief ready", lambda: _pod(cluster, ns, name), running_and_ready, timeout=60)
    forward = wait_until(
        "brief listening",
        lambda: portforward(api.connect_get_namespaced_pod_portforward, name, ns, ports="8080"),
        lambda f: f.error(8080) is None and f.socket(8080).recv(5) == b"hello",
        timeout=30,
    )
    sock = forward.socket(8080)
    cluster.request("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}")
    ready, _, _ = select.select([sock], [], [], 20)
    assert ready, "the forwarded connection did not end with its pod"
    assert sock.recv(65536) == b""
    forward.close()
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/pods")[0] == 200


# -- bad input, over raw HTTP and WebSocket --------------------------------------------------


def _ws(cluster: Cluster, path: str, protocol: str) -> websocket.WebSocket:
    url = cluster.server.replace("https://", "wss://") + path
    return websocket.create_connection(
        url,
        header=[f"Authorization: Bearer {cluster.token}"],
        subprotocols=[protocol],
        sslopt={"ca_certs": str(cluster.ca_file), "cert_reqs": ssl.CERT_REQUIRED},
        timeout=10,
    )


def test_bad_requests_name_what_is_wrong(lab: dict[str, Any]) -> None:
    cluster, ns = lab["cluster"], lab["ns"]
    base = f"/api/v1/namespaces/{ns}/pods"
    cases = {
        f"{base}/bb/exec?stdout=true": "you must specify at least 1 command",
        f"{base}/bb/exec?command=ls": "you must specify at least 1 of stdin, stdout, stderr",
        f"{base}/bb/exec?command=ls&stdout=maybe": 'parsing "maybe": invalid syntax (query parameter stdout)',
        f"{base}/bb/exec?command=ls&stdout=1": "Upgrade request required",
        f"{base}/bb/portforward?ports=abc": 'invalid port "abc"',
        f"{base}/nope/exec?command=ls&stdout=1": 'pods "nope" not found',
    }
    for path, message in cases.items():
        status, body, _ = cluster.request("GET", path)
        assert status in (400, 404), (path, status, body)
        assert message in body["message"], (path, body)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _ws(cluster, f"{base}/bb/portforward", "v4.channel.k8s.io")  # no ports
    assert refused.value.status_code == 400


def test_garbage_on_a_tunnel_ends_only_that_tunnel(lab: dict[str, Any]) -> None:
    cluster, ns = lab["cluster"], lab["ns"]
    tunnel = _ws(cluster, f"/api/v1/namespaces/{ns}/pods/web/portforward", "SPDY/3.1+portforward.k8s.io")
    tunnel.send_binary(b"\x80\x02\x00\x01" + b"\xff" * 64)  # SPDY version 2: not spoken here
    tunnel.settimeout(10)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            if tunnel.recv() == "":
                raise ConnectionError("closed")
    huge = _ws(cluster, f"/api/v1/namespaces/{ns}/pods/web/portforward", "SPDY/3.1+portforward.k8s.io")
    huge.send_binary(b"\x80\x03\x00\x01\x00\xff\xff\xff")  # a SYN_STREAM claiming 16 MiB
    huge.close()
    status, _, _ = cluster.request("GET", f"/api/v1/namespaces/{ns}/pods/web")
    assert status == 200
    sock = socket.create_connection(("127.0.0.1", int(cluster.server.rsplit(":", 1)[1])), timeout=5)
    sock.close()


def test_exec_of_a_busy_pod_while_the_api_answers(lab: dict[str, Any]) -> None:
    """A long exec session does not hold up other requests."""
    api, ns, cluster = lab["api"], lab["ns"], lab["cluster"]
    result: dict[str, Any] = {}

    def slow() -> None:
        result["out"] = stream(
            api.connect_get_namespaced_pod_exec, "bb", ns, command=["sh", "-c", "sleep 2; echo slept"],
            stdin=False, stdout=True, stderr=True, tty=False,
        )  # fmt: skip

    worker = threading.Thread(target=slow)
    worker.start()
    started = time.monotonic()
    assert cluster.request("GET", f"/api/v1/namespaces/{ns}/pods")[0] == 200
    assert time.monotonic() - started < 1.5
    worker.join(20)
    assert result["out"] == "slept\n"
