"""labkit.sandbox.native: the network shim and the launcher, with real Python and Node processes.

Every "pod" here is a plain process with ``LD_PRELOAD=<shim>`` and a pod IP of its own; no
sandbox is needed. Only loopback addresses are ever connected to, except inside an empty
network namespace (``unshare -rn``), where nothing can leave the process.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import random
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.sandbox.native import (
    LAUNCHER_FLAGS,
    SHIM_FLAGS,
    SHIM_LIBS,
    SOURCE_DIR,
    NativeTools,
    NativeToolsError,
    native_tools,
    shim_env,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
NODE = shutil.which("node")
SETPRIV = shutil.which("setpriv")
UNSHARE = shutil.which("unshare")
# an interpreter that uid 65534 can run too (a pyenv under /root may not be readable)
PLAIN_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
# pod IPs of this test run: a /24 of its own, so parallel runs do not meet
NET = f"127.250.{random.randrange(1, 255)}"
CLUSTER_NETS = "127.250.0.0/16"
WAIT_S = 30

if shutil.which((os.environ.get("CC") or "cc").split()[0]) is None and not IN_CI:
    pytest.skip("no C compiler here", allow_module_level=True)

PY_SERVER = textwrap.dedent(
    """
    import http.server, json, socket, sys
    port, name = int(sys.argv[1]), sys.argv[2]
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    host = sys.argv[3] if len(sys.argv) > 3 else ""
    try:
        server = http.server.HTTPServer((host, port), Handler)
    except OSError as e:
        print(json.dumps({"errno": e.errno}), flush=True)
        sys.exit(3)
    print(json.dumps({"address": list(server.server_address)}), flush=True)
    server.serve_forever()
    """
)

NODE_SERVER = textwrap.dedent(
    """
    const http = require('http');
    const [port, name] = process.argv.slice(1);  // node -e: no script path
    const server = http.createServer((req, res) => res.end(name));
    server.on('error', (e) => { console.log(JSON.stringify({code: e.code})); process.exit(3); });
    server.listen(Number(port), () => console.log(JSON.stringify({address: server.address()})));
    """
)


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools() -> Iterator[NativeTools]:
    """The helpers, built into a directory every user can read (tests run some as nobody)."""
    cache = Path(tempfile.mkdtemp(prefix="labkit-native-"))
    cache.chmod(0o755)
    try:
        yield native_tools(cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; all are killed at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def report() -> Iterator[Path]:
    """A report file that processes running as nobody can append to."""
    folder = Path(tempfile.mkdtemp(prefix="labkit-report-"))
    folder.chmod(0o777)
    yield folder / "shim.log"
    shutil.rmtree(folder, ignore_errors=True)


def pod_env(tools: NativeTools, pod_ip: str | None, **extra: str) -> dict[str, str]:
    """The environment of a process of a pod: the shim preloaded, no inherited LABKIT_ values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env["LD_PRELOAD"] = str(tools.shim)
    if pod_ip:
        env["LABKIT_POD_IP"] = pod_ip
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port nothing on this machine uses right now (on any address)."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def start(
    procs: list[subprocess.Popen[str]], argv: list[str], env: dict[str, str]
) -> tuple[subprocess.Popen[str], dict]:
    """Start a server process and return it with the JSON line it prints once it is ready."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(WAIT_S):
            pytest.fail(f"{argv} printed nothing in {WAIT_S} s")
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        stderr = proc.stderr.read() if proc.stderr else ""
        pytest.fail(f"{argv} exited {proc.returncode} without a line: {stderr}")
    return proc, json.loads(line)


def run(argv: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess[str]:
    """Run a short-lived process and capture its output."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=WAIT_S, **kw)


def get(url: str) -> str:
    """GET from the test process itself (no shim): the body."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def _proc_net_addr(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def listeners(port: int) -> set[str]:
    """Addresses with a TCP socket in LISTEN on ``port``, from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                addr, _, hex_port = fields[1].partition(":")
                if fields[3] == "0A" and int(hex_port, 16) == port:
                    found.add(_proc_net_addr(addr))
    return found


def report_lines(path: Path) -> list[str]:
    """The shim's report, one event per line."""
    return path.read_text().splitlines() if path.exists() else []


def wait_for(predicate, what: str):
    """Poll until predicate() is truthy; fail after WAIT_S (no timing is asserted)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def unprivileged(argv: list[str]) -> list[str]:
    """Run argv as uid 65534 when the tests run as root; as the current user otherwise."""
    if os.geteuid() != 0:
        return argv
    if SETPRIV is None:
        pytest.skip("needs setpriv to drop root")
    return [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]


def comm_of(executable: str) -> str:
    """The kernel's comm for a program: its file name, cut to 15 bytes."""
    return os.path.basename(executable)[:15]


# -- the shim: ports -----------------------------------------------------------------------


def test_two_python_pods_listen_on_one_port_each_at_its_own_ip(tools: NativeTools, procs) -> None:
    port = free_port()
    a, b = f"{NET}.2", f"{NET}.3"
    _, ready_a = start(procs, [sys.executable, "-c", PY_SERVER, str(port), "A"], pod_env(tools, a))
    _, ready_b = start(procs, [sys.executable, "-c", PY_SERVER, str(port), "B"], pod_env(tools, b))
    # the app sees what it asked for, as in a container
    assert ready_a["address"] == ["0.0.0.0", port]
    assert ready_b["address"] == ["0.0.0.0", port]
    assert get(f"http://{a}:{port}/") == "A"
    assert get(f"http://{b}:{port}/") == "B"
    assert listeners(port) == {a, b}
    # nothing took the host's 127.0.0.1 for that port
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_two_node_pods_listen_on_one_port_each_at_its_own_ip(tools: NativeTools, procs) -> None:
    port = free_port()
    a, b = f"{NET}.4", f"{NET}.5"
    _, ready_a = start(procs, [NODE, "-e", NODE_SERVER, str(port), "A"], pod_env(tools, a))
    _, ready_b = start(procs, [NODE, "-e", NODE_SERVER, str(port), "B"], pod_env(tools, b))
    assert ready_a["address"] == {"address": "::", "family": "IPv6", "port": port}
    assert ready_b["address"] == {"address": "::", "family": "IPv6", "port": port}
    assert get(f"http://{a}:{port}/") == "A"
    assert get(f"http://{b}:{port}/") == "B"
    assert listeners(port) == {f"::ffff:{a}", f"::ffff:{b}"}


def test_localhost_in_a_pod_is_that_pod(tools: NativeTools, procs) -> None:
    port = free_port()
    a, b = f"{NET}.6", f"{NET}.7"
    start(procs, [sys.executable, "-c", PY_SERVER, str(port), "HOST", "127.0.0.1"], pod_env(tools, None))
    start(procs, [sys.executable, "-c", PY_SERVER, str(port), "A"], pod_env(tools, a))
    start(procs, [sys.executable, "-c", PY_SERVER, str(port), "B"], pod_env(tools, b))
    client = textwrap.dedent(
        """
        import sys, urllib.request
        for url in sys.argv[1:]:
            print(urllib.request.urlopen(url, timeout=10).read().decode())
        """
    )
    urls = [f"http://localhost:{port}/", f"http://127.0.0.1:{port}/", f"http://[::1]:{port}/"]
    done = run([sys.executable, "-c", client, *urls], pod_env(tools, a))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["A", "A", "A"]
    done = run([sys.executable, "-c", client, *urls[:2]], pod_env(tools, b))
    assert done.stdout.split() == ["B", "B"], done.stderr
    # outside any pod, 127.0.0.1 is still the host's own
    assert get(f"http://127.0.0.1:{port}/") == "HOST"
    if NODE:
        fetch = f"fetch('http://localhost:{port}/').then(r => r.text()).then(console.log)"
        done = run([NODE, "-e", fetch], pod_env(tools, b))
        assert done.stdout.strip() == "B", done.stderr


def test_asyncio_ipv4_and_ipv6_only_listeners_share_the_pod_port(tools: NativeTools, procs, report) -> None:
    # asyncio (aiohttp's run_app) and nginx bind 0.0.0.0 and an IPV6_V6ONLY [::] on one port
    port = free_port()
    a, b = f"{NET}.15", f"{NET}.16"
    server = textwrap.dedent(
        """
        import asyncio, json, sys
        async def main():
            async def answer(reader, writer):
                writer.write(sys.argv[2].encode())
                await writer.drain()
                writer.close()
            server = await asyncio.start_server(answer, host=None, port=int(sys.argv[1]))
            names = sorted(list(s.getsockname()[:2]) for s in server.sockets)
            print(json.dumps({"address": names}), flush=True)
            await server.serve_forever()
        asyncio.run(main())
        """
    )
    env = pod_env(tools, a, LABKIT_SHIM_REPORT=str(report))
    _, ready_a = start(procs, [sys.executable, "-c", server, str(port), "A"], env)
    _, ready_b = start(procs, [sys.executable, "-c", server, str(port), "B"], pod_env(tools, b))
    assert ready_a["address"] == ready_b["address"] == [["0.0.0.0", port], ["::", port]]
    for ip, name in ((a, "A"), (b, "B")):
        with socket.create_connection((ip, port), timeout=10) as s:
            assert s.recv(10) == name.encode()
    assert {a, b} <= listeners(port) and not listeners(port) - {a, b}
    assert any(line.startswith(f"LISTEN :::{port} real=::1:") for line in report_lines(report))


def test_threads_binding_at_once_each_see_their_own_socket(tools: NativeTools) -> None:
    script = textwrap.dedent(
        """
        import socket, threading
        bad = []
        def work():
            for _ in range(200):
                with socket.socket() as s:
                    s.bind(("", 0))
                    host, port = s.getsockname()
                    s.listen()
                    with socket.create_connection(("127.0.0.1", port)) as c:
                        if host != "0.0.0.0" or c.getpeername()[1] != port:
                            bad.append((host, port, c.getpeername()))
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(len(bad), bad[:3])
        """
    )
    done = run([sys.executable, "-c", script], pod_env(tools, f"{NET}.17"))
    assert done.stdout.strip() == "0 []", done.stderr


def test_udp_to_localhost_reaches_the_pod(tools: NativeTools, procs) -> None:
    port = free_port()
    a = f"{NET}.8"
    server = textwrap.dedent(
        """
        import json, socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("", int(sys.argv[1])))
        print(json.dumps({"address": list(s.getsockname())}), flush=True)
        data, peer = s.recvfrom(100)
        s.sendto(b"pong:" + data, peer)
        """
    )
    _, ready = start(procs, [sys.executable, "-c", server, str(port)], pod_env(tools, a))
    assert ready["address"] == ["0.0.0.0", port]
    client = textwrap.dedent(
        """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(10)
        s.sendmsg([b"ping"], [], 0, ("127.0.0.1", int(sys.argv[1])))
        print(s.recvfrom(100)[0].decode())
        """
    )
    done = run([sys.executable, "-c", client, str(port)], pod_env(tools, a))
    assert done.stdout.strip() == "pong:ping", done.stderr


def test_privileged_port_without_root(tools: NativeTools, procs, report: Path) -> None:
    a, b = f"{NET}.9", f"{NET}.10"
    offset = "20000"
    env_a = pod_env(
        tools, a, LABKIT_PORT_OFFSET=offset, LABKIT_CLUSTER_NETS=CLUSTER_NETS, LABKIT_SHIM_REPORT=str(report)
    )
    argv = unprivileged([PLAIN_PYTHON, "-c", PY_SERVER, "80", "web"])
    server, ready = start(procs, argv, env_a)
    assert ready["address"] == ["0.0.0.0", 80]
    assert a in listeners(20080)
    assert a not in listeners(80)
    assert f"LISTEN 0.0.0.0:80 real={a}:20080 pid={server.pid} comm={comm_of(PLAIN_PYTHON)}" in report_lines(
        report
    )
    client = textwrap.dedent(
        """
        import socket, sys
        s = socket.create_connection((sys.argv[1], 80), timeout=10)
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        body = b""
        while chunk := s.recv(4096):
            body += chunk
        print(s.getpeername()[1], body.split(b"\\r\\n\\r\\n", 1)[1].decode())
        """
    )
    env_b = pod_env(tools, b, LABKIT_PORT_OFFSET=offset, LABKIT_CLUSTER_NETS=CLUSTER_NETS)
    done = run([sys.executable, "-c", client, a], env_b)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["80", "web"]
    # the real port is the shifted one; without the shim, :80 is not there
    assert get(f"http://{a}:20080/") == "web"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((a, 80), timeout=10).close()
    # the nets may be given in their v4-mapped form too
    env_b["LABKIT_CLUSTER_NETS"] = "::ffff:127.250.0.0/112"
    done = run([sys.executable, "-c", client, a], env_b)
    assert done.stdout.split() == ["80", "web"], done.stderr


def test_privileged_udp_port_without_root(tools: NativeTools, procs) -> None:
    a, b = f"{NET}.22", f"{NET}.23"
    extra = {"LABKIT_PORT_OFFSET": "20000", "LABKIT_CLUSTER_NETS": CLUSTER_NETS}
    server = textwrap.dedent(
        """
        import json, socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("", 53))
        print(json.dumps({"address": list(s.getsockname())}), flush=True)
        data, peer = s.recvfrom(100)
        s.sendto(b"answer:" + data, peer)
        """
    )
    _, ready = start(procs, unprivileged([PLAIN_PYTHON, "-c", server]), pod_env(tools, a, **extra))
    assert ready["address"] == ["0.0.0.0", 53]
    client = textwrap.dedent(
        """
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(10)
        s.sendto(b"query", (sys.argv[1], 53))
        data, source = s.recvfrom(100)
        print(data.decode(), source[0], source[1])
        """
    )
    done = run([sys.executable, "-c", client, a], pod_env(tools, b, **extra))
    assert done.stdout.split() == ["answer:query", a, "53"], done.stderr


def test_listen_without_bind_lands_on_the_pod_ip(tools: NativeTools, procs) -> None:
    a = f"{NET}.24"
    script = textwrap.dedent(
        """
        import json, socket, time
        s = socket.socket()
        s.listen()
        print(json.dumps({"address": list(s.getsockname())}), flush=True)
        time.sleep(600)
        """
    )
    _, ready = start(procs, [sys.executable, "-c", script], pod_env(tools, a))
    host, port = ready["address"]
    assert host == "0.0.0.0"
    assert listeners(port) == {a}


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_privileged_port_without_root_node(tools: NativeTools, procs) -> None:
    a, b = f"{NET}.18", f"{NET}.19"
    extra = {"LABKIT_PORT_OFFSET": "20000", "LABKIT_CLUSTER_NETS": CLUSTER_NETS}
    argv = unprivileged([NODE, "-e", NODE_SERVER, "80", "node-web"])
    _, ready = start(procs, argv, pod_env(tools, a, **extra))
    assert ready["address"] == {"address": "::", "family": "IPv6", "port": 80}
    assert f"::ffff:{a}" in listeners(20080)
    fetch = f"fetch('http://{a}/').then(r => r.text()).then(console.log)"
    done = run([NODE, "-e", fetch], pod_env(tools, b, **extra))
    assert done.stdout.strip() == "node-web", done.stderr


def test_hostname(tools: NativeTools) -> None:
    env = pod_env(tools, f"{NET}.11", LABKIT_HOSTNAME="web-5d9c-abcde")
    script = "import os, socket; print(socket.gethostname(), os.uname().nodename)"
    done = run([sys.executable, "-c", script], env)
    assert done.stdout.split() == ["web-5d9c-abcde", "web-5d9c-abcde"], done.stderr
    assert run(["hostname"], env).stdout.strip() == "web-5d9c-abcde"
    if NODE:
        node = run([NODE, "-e", "console.log(require('os').hostname())"], env)
        assert node.stdout.strip() == "web-5d9c-abcde"


def test_port_clash_in_a_pod_fails_and_is_reported(tools: NativeTools, procs, report: Path) -> None:
    port = free_port()
    a = f"{NET}.12"
    env = pod_env(tools, a, LABKIT_SHIM_REPORT=str(report))
    first, _ = start(procs, [sys.executable, "-c", PY_SERVER, str(port), "first"], env)
    second, answer = start(procs, [sys.executable, "-c", PY_SERVER, str(port), "second"], env)
    assert answer == {"errno": errno.EADDRINUSE}
    assert second.wait(WAIT_S) == 3
    comm = comm_of(sys.executable)
    lines = report_lines(report)
    assert f"LISTEN 0.0.0.0:{port} real={a}:{port} pid={first.pid} comm={comm}" in lines
    assert f"EADDRINUSE 0.0.0.0:{port} pid={second.pid} comm={comm}" in lines
    assert get(f"http://{a}:{port}/") == "first"
    if NODE:
        node, answer = start(procs, [NODE, "-e", NODE_SERVER, str(port), "node"], env)
        assert answer == {"code": "EADDRINUSE"}
        assert f"EADDRINUSE :::{port} pid={node.pid} comm=node" in report_lines(report)


def test_forked_children_report_and_keep_the_rewrite(tools: NativeTools, procs, report: Path) -> None:
    port = free_port()
    a = f"{NET}.13"
    env = pod_env(tools, a, LABKIT_SHIM_REPORT=str(report))
    start(procs, [sys.executable, "-c", PY_SERVER, str(port), "first"], env)
    script = textwrap.dedent(
        """
        import os, socket, sys
        pid = os.fork()
        if pid == 0:
            s = socket.socket()
            s.bind(("", 0))
            print("child", os.getpid(), s.getsockname()[0], flush=True)
            try:
                socket.socket().bind(("", int(sys.argv[1])))
            except OSError as e:
                print("child-errno", e.errno, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        """
    )
    done = run([sys.executable, "-c", script, str(port)], env)
    words = done.stdout.split()
    assert words[0] == "child" and words[2] == "0.0.0.0", done
    assert words[3:] == ["child-errno", str(errno.EADDRINUSE)]
    assert f"EADDRINUSE 0.0.0.0:{port} pid={words[1]} comm={comm_of(sys.executable)}" in report_lines(report)
    # and an exec'd grandchild (through sh) reports under its own name
    bind = f"import socket; socket.socket().bind(('', {port}))"
    done = run(["sh", "-c", f'exec {PLAIN_PYTHON} -c "{bind}"'], env)
    assert "Address already in use" in done.stderr
    assert any(
        line.startswith(f"EADDRINUSE 0.0.0.0:{port} ") and line.endswith(f"comm={comm_of(PLAIN_PYTHON)}")
        for line in report_lines(report)
    )


@pytest.mark.skipif(UNSHARE is None, reason="needs unshare")
def test_loopback_only_refuses_other_destinations(tools: NativeTools, procs, report: Path) -> None:
    if run([UNSHARE, "-rn", "true"]).returncode != 0:
        pytest.skip("unshare -rn does not work here")
    env = pod_env(tools, f"{NET}.14", LABKIT_LOOPBACK_ONLY="1", LABKIT_SHIM_REPORT=str(report))
    script = textwrap.dedent(
        """
        import socket
        for kind, addr in ((socket.SOCK_STREAM, ("192.0.2.1", 80)), (socket.SOCK_DGRAM, ("192.0.2.1", 53))):
            s = socket.socket(socket.AF_INET, kind)
            try:
                if kind == socket.SOCK_STREAM:
                    s.connect(addr)
                else:
                    s.sendto(b"x", addr)
                print("sent")
            except OSError as e:
                print(e.errno)
        """
    )
    # an empty network namespace: even a broken shim could not send anything anywhere
    done = run([UNSHARE, "-rn", sys.executable, "-c", script], env)
    assert done.stdout.split() == [str(errno.ENETUNREACH)] * 2, done.stderr
    lines = report_lines(report)
    comm = comm_of(sys.executable)
    assert any(line.startswith("BLOCKED 192.0.2.1:80 ") and line.endswith(f"comm={comm}") for line in lines)
    assert any(line.startswith("BLOCKED 192.0.2.1:53 ") for line in lines)
    # loopback destinations stay open (this runs in the host's namespace: loopback only)
    port = free_port()
    start(procs, [sys.executable, "-c", PY_SERVER, str(port), "lo", "127.0.0.1"], pod_env(tools, None))
    client = (
        f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/').read().decode())"
    )
    done = run([sys.executable, "-c", client], pod_env(tools, None, LABKIT_LOOPBACK_ONLY="1"))
    assert done.stdout.strip() == "lo"


def test_inactive_without_a_pod_ip(tools: NativeTools, procs) -> None:
    env = pod_env(tools, None, LABKIT_HOSTNAME="ignored", LABKIT_PORT_OFFSET="20000")
    script = (
        "import socket; s = socket.socket(); s.bind(('', 0)); s.listen(); "
        "print(s.getsockname()[0], socket.gethostname())"
    )
    done = run([sys.executable, "-c", script], env)
    host, name = done.stdout.split()
    assert host == "0.0.0.0"
    assert name == socket.gethostname()


def test_configuration_is_copied_at_load(tools: NativeTools) -> None:
    script = textwrap.dedent(
        """
        import os, socket
        os.environ.clear()  # unsetenv() for each name: the C environment is empty too
        s = socket.socket()
        s.bind(("", 0))
        print(s.getsockname()[0], socket.gethostname())
        """
    )
    env = pod_env(tools, f"{NET}.20", LABKIT_HOSTNAME="copied")
    done = run([sys.executable, "-c", script], env)
    assert done.stdout.split() == ["0.0.0.0", "copied"], done.stderr


@pytest.mark.skipif(os.geteuid() != 0 or UNSHARE is None, reason="needs root for a mount namespace")
def test_shim_works_from_etc_ld_so_preload(tools: NativeTools, tmp_path: Path) -> None:
    # as the sandbox will load it: /etc/ld.so.preload in a private mount namespace, no LD_PRELOAD
    etc = tmp_path / "etc"
    shutil.copytree("/etc", etc, symlinks=True, ignore_dangling_symlinks=True)
    (etc / "ld.so.preload").write_text(f"{tools.shim}\n")
    script = "import socket; s = socket.socket(); s.bind(('', 0)); print(socket.gethostname(), flush=True)"
    env = pod_env(tools, f"{NET}.21", LABKIT_HOSTNAME="from-preload")
    del env["LD_PRELOAD"]
    inner = f'mount --bind {etc} /etc && exec {PLAIN_PYTHON} -c "{script}"'
    done = run([UNSHARE, "-m", "--propagation", "private", "sh", "-c", inner], env)
    if "mount" in done.stderr and done.returncode != 0:
        pytest.skip(f"no private mount namespace here: {done.stderr.strip()}")
    assert done.stdout.strip() == "from-preload", done.stderr


def test_shim_and_launcher_compile_without_warnings(tmp_path: Path) -> None:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no cc")
    shim_c, launcher_c = str(SOURCE_DIR / "netshim.c"), str(SOURCE_DIR / "launcher.c")
    shim = run([cc, *SHIM_FLAGS, "-Werror", "-o", str(tmp_path / "s.so"), shim_c, *SHIM_LIBS])
    assert (shim.returncode, shim.stderr) == (0, "")
    launcher = run([cc, *LAUNCHER_FLAGS, "-Werror", "-o", str(tmp_path / "l"), launcher_c])
    assert (launcher.returncode, launcher.stderr) == (0, "")


# -- the launcher --------------------------------------------------------------------------


def test_launcher_runs_the_program_with_its_arguments(tools: NativeTools) -> None:
    done = run([str(tools.launcher), "--", "sh", "-c", 'echo "$@"; exit 7', "sh", "a b", "c"])
    assert (done.returncode, done.stdout) == (7, "a b c\n")
    done = run([str(tools.launcher), "--no-new-privs", "--", "grep", "NoNewPrivs", "/proc/self/status"])
    assert done.stdout.split() == ["NoNewPrivs:", "1"]
    done = run([str(tools.launcher), "--", "grep", "NoNewPrivs", "/proc/self/status"])
    assert done.stdout.split() == ["NoNewPrivs:", "0"]


def test_launcher_errors_exit_as_shells_do(tools: NativeTools, tmp_path: Path) -> None:
    missing = run([str(tools.launcher), "--", "no-such-program-xyz"])
    assert missing.returncode == 127
    assert missing.stderr == "launcher: no-such-program-xyz: No such file or directory\n"
    bad = run([str(tools.launcher), "--frobnicate", "--", "true"])
    assert bad.returncode == 127
    assert bad.stderr.startswith("launcher: unknown option '--frobnicate'")
    assert bad.stderr.count("\n") == 1
    nothing = run([str(tools.launcher), "--pdeathsig"])
    assert nothing.returncode == 127 and nothing.stderr.startswith("launcher: no program given")
    data = tmp_path / "data.txt"
    data.write_text("not a program\n")
    denied = run([str(tools.launcher), "--", str(data)])
    assert denied.returncode == 126
    assert denied.stderr == f"launcher: {data}: Permission denied\n"
    # found on $PATH but not executable: 126, as a shell says
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    denied = run([str(tools.launcher), "--", "data.txt"], env)
    assert (denied.returncode, denied.stderr) == (126, "launcher: data.txt: Permission denied\n")


def test_launcher_pdeathsig_kills_the_child_with_its_parent(tools: NativeTools) -> None:
    # a reaper (child subreaper) starts a parent that starts launcher --pdeathsig -- sleep;
    # the reaper kills the parent and collects the orphan, so it sees how the child ended
    reaper = textwrap.dedent(
        """
        import ctypes, os, signal, subprocess, sys
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        argv = [sys.executable, "-c", sys.argv[1], *sys.argv[2:]]
        parent = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        _, status = os.waitpid(child, 0)
        print(os.WIFSIGNALED(status) and os.WTERMSIG(status))
        """
    )
    parent = textwrap.dedent(
        """
        import subprocess, sys, time
        child = subprocess.Popen(sys.argv[1:])
        time.sleep(0.5)  # let the launcher set the signal and exec sleep
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    argv = [str(tools.launcher), "--pdeathsig", "--", "sleep", "600"]
    done = run([sys.executable, "-c", reaper, parent, *argv])
    assert done.stdout.strip() == str(int(signal.SIGKILL)), done.stderr


def _userns_works() -> bool:
    return UNSHARE is not None and run([UNSHARE, "-U", "true"]).returncode == 0


@pytest.mark.skipif(not _userns_works(), reason="user namespaces are closed here already")
def test_launcher_no_userns_rehearses_binder(tools: NativeTools) -> None:
    launch = [str(tools.launcher), "--no-userns", "--"]
    done = run([*launch, UNSHARE, "-U", "true"])
    assert done.returncode != 0
    assert "Operation not permitted" in done.stderr
    script = textwrap.dedent(
        """
        import ctypes, os, subprocess, sys, threading
        libc = ctypes.CDLL(None, use_errno=True)
        print("unshare", libc.unshare(0x10000000), ctypes.get_errno() == __import__("errno").EPERM)
        if hasattr(os, "unshare"):
            try:
                os.unshare(os.CLONE_NEWUSER)
            except PermissionError:
                print("os.unshare PermissionError")
        pid = os.fork()
        if pid == 0:
            os._exit(5)
        print("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        print("subprocess", subprocess.run(["echo", "ok"], capture_output=True, text=True).stdout.strip())
        seen = []
        t = threading.Thread(target=seen.append, args=("thread",))
        t.start(); t.join()
        print(*seen)
        """
    )
    done = run([*launch, sys.executable, "-c", script])
    lines = done.stdout.splitlines()
    assert lines[0] == "unshare -1 True", done.stderr
    assert "fork 5" in lines and "subprocess ok" in lines and "thread" in lines
    if hasattr(os, "unshare"):
        assert "os.unshare PermissionError" in lines
    # clone3 answers ENOSYS, so libcs fall back to clone
    clone3 = (
        "import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
        "print(libc.syscall(435, None, 0), ctypes.get_errno())"
    )
    assert run([*launch, sys.executable, "-c", clone3]).stdout.split() == ["-1", str(errno.ENOSYS)]


def test_launcher_no_statx(tools: NativeTools) -> None:
    if os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("the filter knows x86_64 and aarch64 only")
    nr = 332 if os.uname().machine == "x86_64" else 291
    script = textwrap.dedent(
        f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(256)
        rc = libc.syscall({nr}, -100, b"/", 0, 0x7ff, buf)
        print(rc, ctypes.get_errno() if rc else 0, os.stat("/").st_mode)
        """
    )
    done = run([str(tools.launcher), "--no-statx", "--", sys.executable, "-c", script])
    rc, err, mode = done.stdout.split()
    assert (rc, err) == ("-1", str(errno.ENOSYS)), done.stderr
    assert stat.S_ISDIR(int(mode))
    plain = run([sys.executable, "-c", script]).stdout.split()
    assert plain[:2] == ["0", "0"]
    if NODE:
        stat_root = "console.log(require('fs').statSync('/').isDirectory())"
        node = run([str(tools.launcher), "--no-statx", "--", NODE, "-e", stat_root])
        assert node.stdout.strip() == "true", node.stderr


@pytest.mark.skipif(shutil.which("proot") is None or NODE is None, reason="needs proot and node")
def test_launcher_no_statx_lets_node_run_under_proot(tools: NativeTools, tmp_path: Path) -> None:
    # PRoot 5.1.0 does not translate statx; with ENOSYS, libuv falls back to stat, which it does
    root = tmp_path / "rootfs"
    (root / "app").mkdir(parents=True)
    (root / "app" / "s.js").write_text("console.log('ran', __filename, require('os').hostname())\n")
    shutil.copy(tools.launcher, root / "launcher")
    shutil.copy(tools.shim, root / "netshim.so")
    proot = ["proot", "-r", str(root), "-w", "/app"]
    for host_dir in ("/usr", "/lib", "/lib64", "/bin", "/etc", "/dev", "/proc"):
        if os.path.exists(host_dir):
            proot += ["-b", host_dir]
    env = pod_env(tools, f"{NET}.25", LABKIT_HOSTNAME="under-proot")
    env["LD_PRELOAD"] = "/netshim.so"
    done = run([*proot, "/launcher", "--no-statx", "--", NODE, "/app/s.js"], env)
    assert done.stdout.split() == ["ran", "/app/s.js", "under-proot"], done.stderr


# -- native_tools ---------------------------------------------------------------------------


def _logging_cc(folder: Path) -> Path:
    """A CC that logs each call, then runs the real cc."""
    real = shutil.which("cc")
    if real is None:
        pytest.skip("no cc")
    script = folder / "logging-cc"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{folder}/cc.log"\nexec {real} "$@"\n')
    script.chmod(0o755)
    return script


def test_native_tools_second_call_is_a_cache_hit(tmp_path: Path) -> None:
    cc = _logging_cc(tmp_path)
    cache = tmp_path / "cache"
    code = (
        "import json, sys; from pathlib import Path; from labkit.sandbox.native import native_tools; "
        "t = native_tools(Path(sys.argv[1])); print(json.dumps([str(t.shim), str(t.launcher)]))"
    )
    env = dict(os.environ, CC=str(cc))
    first = run([sys.executable, "-c", code, str(cache)], env)
    assert first.returncode == 0, first.stderr
    shim, launcher = (Path(p) for p in json.loads(first.stdout))
    compiles = [line for line in (tmp_path / "cc.log").read_text().splitlines() if " -o " in line]
    assert len(compiles) == 2
    mtimes = {p: p.stat().st_mtime_ns for p in (shim, launcher)}
    second = run([sys.executable, "-c", code, str(cache)], env)
    assert json.loads(second.stdout) == [str(shim), str(launcher)]
    log = (tmp_path / "cc.log").read_text().splitlines()
    assert [line for line in log if " -o " in line] == compiles
    assert {p: p.stat().st_mtime_ns for p in (shim, launcher)} == mtimes
    assert sorted(p.name for p in cache.iterdir()) == sorted([shim.name, launcher.name])
    # the shim is a loadable library and the launcher runs
    assert run(["true"], {"LD_PRELOAD": str(shim), "PATH": os.environ["PATH"]}).stderr == ""
    assert run([str(launcher), "--", "echo", "hi"]).stdout == "hi\n"


def test_native_tools_in_process_hit(tools: NativeTools) -> None:
    assert native_tools(tools.shim.parent) is native_tools(tools.shim.parent)


def test_native_tools_racing_processes(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from labkit.sandbox.native import native_tools; "
        "print(native_tools(Path(sys.argv[1])))"
    )
    cache = str(tmp_path / "cache")
    argv = [sys.executable, "-c", code, cache]
    racers = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in racers]
    assert [p.returncode for p in racers] == [0, 0, 0]
    assert len(set(outs)) == 1
    assert not [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")]


def test_native_tools_without_a_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(NativeToolsError) as info:
        native_tools(tmp_path / "cache")
    message = str(info.value)
    assert "apt-get install gcc" in message and "binder/apt.txt" in message and "libc6-dev" in message
    assert isinstance(info.value, RuntimeError)


def test_native_tools_with_a_broken_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken-cc"
    broken.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo "broken-cc 1.0"; exit 0; fi\n'
        'echo "fatal error: stdio.h: No such file or directory" >&2\nexit 1\n'
    )
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    with pytest.raises(NativeToolsError) as info:
        native_tools(tmp_path / "cache")
    message = str(info.value)
    assert "apt-get install gcc" in message and "binder/apt.txt" in message
    assert "fatal error: stdio.h: No such file or directory" in message
    assert not list((tmp_path / "cache").iterdir())


def test_shim_env_checks_its_input(tmp_path: Path) -> None:
    env = shim_env(
        "127.244.1.5",
        port_offset=20000,
        cluster_nets=["127.244.0.0/16", "127.96.0.1/16"],
        loopback_only=True,
        hostname="web-5d9c-abcde",
        report=tmp_path / "r.log",
    )
    assert env == {
        "LABKIT_POD_IP": "127.244.1.5",
        "LABKIT_PORT_OFFSET": "20000",
        "LABKIT_CLUSTER_NETS": "127.244.0.0/16,127.96.0.0/16",
        "LABKIT_LOOPBACK_ONLY": "1",
        "LABKIT_HOSTNAME": "web-5d9c-abcde",
        "LABKIT_SHIM_REPORT": str(tmp_path / "r.log"),
    }
    assert shim_env("127.0.0.9") == {"LABKIT_POD_IP": "127.0.0.9"}
    mapped = shim_env("127.0.0.9", cluster_nets=["::ffff:127.96.0.0/112"])
    assert mapped["LABKIT_CLUSTER_NETS"] == "127.96.0.0/16"
    for bad in (
        lambda: shim_env("10.0.0.1"),
        lambda: shim_env("::1"),
        lambda: shim_env("127.0.0.1", port_offset=65000),
        lambda: shim_env("127.0.0.1", cluster_nets=["127.244.0.0/40"]),
        lambda: shim_env("127.0.0.1", cluster_nets=["fd00::/64"]),
        lambda: shim_env("127.0.0.1", hostname="x" * 64),
        lambda: shim_env("127.0.0.1", hostname="a b"),
    ):
        with pytest.raises(ValueError):
            bad()
