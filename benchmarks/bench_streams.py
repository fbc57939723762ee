"""kubectl exec and port-forward against the embedded cluster.

*exec round trip*: ``kubectl exec POD -- true``, wall time of the whole kubectl run (process
start, the WebSocket upgrade, the command in the container's sandbox, the exit status), for
each kubectl found (the virtualenv's and the machine's). kind typically takes 100-200 ms.

*port-forward throughput*: a Python HTTP server in a pod serves a body of ``--body-kib`` KiB;
keep-alive GETs for ``--seconds`` through ``kubectl port-forward`` (SPDY tunnelled in a
WebSocket, through the API server) and, in the same run, straight to the pod IP. The ratio
(through the forward / direct) is what the issue sets a target on (≥ 0.5).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import common
from common import Row

EXEC_TARGET_MS = 200.0
RATIO_TARGET = 0.5
SERVER = """\
import http.server, sys
body = b"x" * (int(sys.argv[1]) * 1024)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("", 8080), H).serve_forever()
"""


def kubectls() -> dict[str, str]:
    """The kubectl binaries to time: the virtualenv's, and the machine's if it is another."""
    found = {"venv": str(common.KUBECTL)}
    system = shutil.which("kubectl", path="/usr/local/bin:/usr/bin:/bin")
    if system and Path(system).resolve() != Path(common.KUBECTL).resolve():
        found["system"] = system
    return found


def exec_round_trips(home: common.Home, binary: str, count: int) -> list[float]:
    """Milliseconds of ``kubectl exec bench -- true``, ``count`` times."""
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        done = subprocess.run(
            [binary, "exec", "bench", "--", "true"], env=home.env(), capture_output=True, timeout=30
        )
        times.append(common.elapsed_ms(t0))
        if done.returncode != 0:
            raise RuntimeError(f"kubectl exec failed: {done.stderr.decode()}")
    return times


def throughput(host: str, port: int, seconds: float) -> tuple[float, float]:
    """(requests per second, MiB per second) of keep-alive GETs for ``seconds``."""
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=30)
    count = size = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        conn.request("GET", "/")
        response = conn.getresponse()
        size += len(response.read())
        count += 1
    took = time.perf_counter() - started
    conn.close()
    return count / took, size / took / 2**20


def start_forward(home: common.Home) -> tuple[subprocess.Popen[str], int]:
    """``kubectl port-forward pod/bench :8080``; the local port."""
    proc = subprocess.Popen(
        [str(common.KUBECTL), "port-forward", "--address", "127.0.0.1", "pod/bench", ":8080"],
        env=home.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"kubectl port-forward did not start: {line}{proc.communicate()[0]}")
    return proc, int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--execs", type=common.bounded_int(1, 500), default=20, help="exec runs (default 20)")
    parser.add_argument(
        "--seconds", type=common.bounded_int(1, 60), default=3, help="seconds per throughput run (default 3)"
    )
    parser.add_argument(
        "--repeats", type=common.bounded_int(1, 20), default=3, help="throughput runs each way (default 3)"
    )
    parser.add_argument(
        "--body-kib", type=common.bounded_int(1, 4096), default=64, help="response size in KiB (default 64)"
    )
    common.add_common_args(parser, max_seconds=600)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    rows: list[Row] = []
    extra: dict[str, object] = {}
    with common.running_cluster(nodes=1) as (home, _endpoint):
        done = home.kubectl(
            "run", "bench", "--image=python:3.11", "--restart=Never", "--",
            "python", "-c", SERVER, str(args.body_kib),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        home.kubectl("wait", "--for=condition=Ready", "pod/bench", "--timeout=60s", timeout=90)
        pod_ip = home.kubectl("get", "pod", "bench", "-o", "jsonpath={.status.podIP}").stdout.strip()
        deadline = time.monotonic() + 30
        while True:  # Ready comes before the server listens (no readinessProbe)
            try:
                throughput(pod_ip, 8080, 0.05)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        for version, binary in kubectls().items():
            exec_round_trips(home, binary, 2)  # warm: kubectl's discovery cache
            times = exec_round_trips(home, binary, args.execs)
            print(common.describe(f"exec {version}", times))
            p50 = common.percentile(times, 50)
            extra[f"exec_ms_{version}"] = times
            rows.append(
                Row(
                    "streams",
                    f"`kubectl exec p -- true` ({version} kubectl, p50 of {len(times)})",
                    f"{p50:.0f} ms (p99 {common.percentile(times, 99):.0f} ms)",
                    f"≤ {EXEC_TARGET_MS:.0f} ms (kind)",
                    p50 <= EXEC_TARGET_MS,
                )
            )
        proc, local = start_forward(home)
        try:
            direct, forwarded = [], []
            for _ in range(args.repeats):  # interleaved, so both see the same machine
                direct.append(throughput(pod_ip, 8080, args.seconds))
                forwarded.append(throughput("127.0.0.1", local, args.seconds))
        finally:
            proc.kill()
            proc.wait()
    direct_mib = common.percentile([d[1] for d in direct], 50)
    forward_mib = common.percentile([f[1] for f in forwarded], 50)
    ratio = forward_mib / direct_mib
    extra.update(direct=direct, forwarded=forwarded)
    rows += [
        Row(
            "streams", f"HTTP GET {args.body_kib} KiB, direct to the pod (median)", f"{direct_mib:.1f} MiB/s"
        ),
        Row(
            "streams",
            f"HTTP GET {args.body_kib} KiB through kubectl port-forward (median)",
            f"{forward_mib:.1f} MiB/s ({common.percentile([f[0] for f in forwarded], 50):.0f} req/s)",
        ),
        Row(
            "streams",
            "port-forward / direct throughput",
            f"{ratio:.2f}",
            f"≥ {RATIO_TARGET}",
            ratio >= RATIO_TARGET,
        ),
    ]
    common.report(rows, common.machine(), args.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
