"""Cost of labkit's native helpers: building them, and the network shim on socket-heavy loops.

No cluster is needed. The helpers are built into a temporary cache with ``native_tools``
(cold: both compiled; then a hit in a new process, which asks the compiler its version once,
and a hit in the same process). Then a worker process runs three loops, once per mode:

- ``connect``: ``socket(); connect(("127.0.0.1", port)); close()`` to a listener of its own;
- ``bind``: ``socket(); bind(("", 0)); getsockname(); close()``;
- ``getsockname``: the call alone, on one bound socket (the hook's fixed cost).

Modes: no shim; the shim loaded but inactive (no ``LABKIT_POD_IP``); the shim active (pod IP,
port offset, cluster nets and loopback-only: every check on the path). Workers of the three
modes take turns, ``--repeats`` times; the table shows the median per operation and the
ratio to "no shim".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import common
from common import Row

from labkit.sandbox.native import native_tools

POD_IP = "127.251.77.2"

WORKER = textwrap.dedent(
    """
    import json, socket, sys, threading, time
    n = int(sys.argv[1])
    server = socket.socket()
    server.bind(("", 0))
    server.listen(4096)
    port = server.getsockname()[1]

    def accept():
        while True:
            conn, _ = server.accept()
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    out = {}

    def connect_loop(count):
        for _ in range(count):
            s = socket.socket()
            s.connect(("127.0.0.1", port))
            s.close()

    def bind_loop(count):
        for _ in range(count):
            s = socket.socket()
            s.bind(("", 0))
            s.getsockname()
            s.close()

    def name_loop(count):
        for _ in range(count):
            server.getsockname()

    loops = (("connect", connect_loop, n), ("bind", bind_loop, n), ("getsockname", name_loop, 10 * n))
    for name, loop, count in loops:
        loop(max(1, count // 20))  # warm up
        t0 = time.perf_counter()
        loop(count)
        out[name] = (time.perf_counter() - t0) / count * 1e6
    print(json.dumps(out))
    """
)


def worker_env(mode: str, shim: Path) -> dict[str, str]:
    """The environment of one mode's worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_") and k != "LD_PRELOAD"}
    if mode != "no shim":
        env["LD_PRELOAD"] = str(shim)
    if mode == "shim active":
        env.update(
            LABKIT_POD_IP=POD_IP,
            LABKIT_PORT_OFFSET="20000",
            LABKIT_CLUSTER_NETS="127.251.0.0/16,127.96.0.0/16",
            LABKIT_LOOPBACK_ONLY="1",
            LABKIT_HOSTNAME="bench",
        )
    return env


def build_figures(cache: Path) -> dict[str, float]:
    """Milliseconds for a cold build, a hit in a new process, and a hit in this process (µs)."""
    code = "import sys; from pathlib import Path; from labkit.sandbox.native import native_tools; "
    timed = code + "import time; t = time.perf_counter(); native_tools(Path(sys.argv[1])); "
    timed += "print((time.perf_counter() - t) * 1000)"
    env = dict(os.environ)
    cold = float(
        subprocess.run(
            [sys.executable, "-c", timed, str(cache)], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    warm = [
        float(
            subprocess.run(
                [sys.executable, "-c", timed, str(cache)], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(5)
    ]
    native_tools(cache)
    hits = []
    for _ in range(1000):
        t = time.perf_counter()
        native_tools(cache)
        hits.append((time.perf_counter() - t) * 1e6)
    return {"cold_ms": cold, "new_process_hit_ms": statistics.median(warm), "hit_us": statistics.median(hits)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--connects",
        type=common.bounded_int(100, 20000),
        default=2000,
        help="operations per loop and worker (default: 2000)",
    )
    parser.add_argument(
        "--repeats", type=common.bounded_int(1, 50), default=7, help="workers per mode (default: 7)"
    )
    common.add_common_args(parser, max_seconds=300)
    args = parser.parse_args()
    common.exit_on_sigterm()
    deadline = time.monotonic() + args.max_seconds

    with tempfile.TemporaryDirectory(prefix="labkit-bench-native-") as tmp:
        cache = Path(tmp)
        build = build_figures(cache)
        shim = native_tools(cache).shim
        modes = ("no shim", "shim inactive", "shim active")
        raw: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for r in range(args.repeats):
            for mode in modes:
                if time.monotonic() > deadline:
                    break
                done = subprocess.run(
                    [sys.executable, "-c", WORKER, str(args.connects)],
                    env=worker_env(mode, shim),
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if done.returncode != 0:
                    raise SystemExit(f"worker ({mode}) failed: {done.stderr.strip()}")
                raw[mode].append(json.loads(done.stdout))
            print(f"round {r + 1}/{args.repeats} done", flush=True)

    rows = [
        Row("native", "native_tools cold build (both helpers)", f"{build['cold_ms']:.0f} ms"),
        Row(
            "native", "native_tools hit, first call in a new process", f"{build['new_process_hit_ms']:.1f} ms"
        ),
        Row(
            "native",
            "native_tools hit, same process",
            f"{build['hit_us']:.1f} µs",
            "< 1 ms",
            build["hit_us"] < 1000,
        ),
    ]
    medians: dict[str, dict[str, float]] = {}
    for mode in modes:
        medians[mode] = {op: statistics.median(run[op] for run in raw[mode]) for op in raw[mode][0]}
    for op in medians["no shim"]:
        base = medians["no shim"][op]
        for mode in modes:
            value = medians[mode][op]
            rows.append(
                Row("native", f"{op}: {mode} (median µs/op, ratio)", f"{value:.2f} µs ({value / base:.2f}x)")
            )
    common.report(rows, common.machine(), args.json, {"build": build, "raw": raw, "ops": args.connects})


if __name__ == "__main__":
    main()
