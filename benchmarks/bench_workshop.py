"""Issue 15 figures: the tutorials under nbval, the workshop's memory, and `labkit lab`'s start.

- **The whole nbval run of notebooks/** (target ≤ 120 s on the 2-core machine): every notebook
  in a fresh kernel on a fresh embedded cluster, as ``.ci/notebooks`` runs them.
- **Peak memory of the kernels plus the cluster** (target ≤ 1 GB, what Binder guarantees),
  sampled every 0.2 s during that run: the proportional set size (PSS, from
  ``/proc/PID/smaps_rollup``) of the daemon and everything it started (the pods), plus the
  pytest process and its kernels. PSS counts shared pages once across the processes.
- **`labkit lab` on a warm machine until JupyterLab answers**: with the cluster stopped (so
  the time includes starting it), from the command until ``/api/status`` answers.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.common import Row

ROOT = Path(__file__).resolve().parents[1]
NBVAL_TARGET_S = 120.0
MEMORY_TARGET_MB = 1024.0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(root: int, children: dict[int, list[int]]) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def _daemon_pid(home: Path) -> int | None:
    for pid_file in home.glob("clusters/*/daemon.pid"):
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return None


def nbval_run(home: Path) -> tuple[float, int, float, float]:
    """(seconds, exit code, peak MB of everything, peak MB of the cluster) for one nbval run."""
    env = {**os.environ, "LABKIT_HOME": str(home), "LABKIT_PROGRESS": "plain"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
               "--nbval-current-env", "--nbval-sanitize-with", "notebooks/sanitize.cfg",
               "notebooks/"]  # fmt: skip
    started = time.monotonic()
    run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_all = peak_cluster = 0.0
    while run.poll() is None:
        children = _children()
        daemon = _daemon_pid(home)
        cluster = sum(_pss_kb(p) for p in _tree(daemon, children)) / 1024 if daemon else 0.0
        client = sum(_pss_kb(p) for p in _tree(run.pid, children)) / 1024
        peak_all, peak_cluster = max(peak_all, cluster + client), max(peak_cluster, cluster)
        time.sleep(0.2)
    return time.monotonic() - started, run.returncode, peak_all, peak_cluster


def lab_start(home: Path) -> float:
    """Seconds from `labkit lab` to JupyterLab answering (the cluster starts in that time)."""
    env = {**os.environ, "LABKIT_HOME": str(home)}
    started = time.monotonic()
    lab = subprocess.Popen([sys.executable, "-m", "labkit", "lab", "--port", "0"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)  # fmt: skip
    try:
        url = None
        while url is None and lab.stdout is not None:
            line = lab.stdout.readline()
            if not line:
                raise RuntimeError("labkit lab ended before printing its URL")
            url = re.search(r"Open: http://127\.0\.0\.1:(\d+)/\S*\?token=(\S+)", line)
        while True:
            try:
                status = f"http://127.0.0.1:{url.group(1)}/api/status?token={url.group(2)}"
                urllib.request.urlopen(status, timeout=2)
                return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
    finally:
        os.killpg(lab.pid, 15)
        lab.wait(20)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-rounds", type=common.bounded_int(1, 10), default=3, help="labkit lab starts")
    common.add_common_args(parser, max_seconds=600)
    args = parser.parse_args(argv)
    common.exit_on_sigterm()
    info = common.machine()
    home = common.Home(Path(tempfile.mkdtemp(prefix="labkit-bench-")), name="labkit")
    try:
        seconds, code, peak_all, peak_cluster = nbval_run(home.path)
        subprocess.run([sys.executable, "-m", "labkit", "cluster", "down"], env={**os.environ,
                       "LABKIT_HOME": str(home.path)}, capture_output=True)  # fmt: skip
        starts = []
        for _ in range(args.lab_rounds):
            starts.append(lab_start(home.path))
            subprocess.run([sys.executable, "-m", "labkit", "cluster", "down"], env={**os.environ,
                           "LABKIT_HOME": str(home.path)}, capture_output=True)  # fmt: skip
    finally:
        home.destroy()
    rows = [
        Row("workshop", f"nbval over notebooks/ (exit {code})", f"{seconds:.1f} s",
            f"≤ {NBVAL_TARGET_S:.0f} s", seconds <= NBVAL_TARGET_S and code == 0),
        Row("workshop", "peak PSS: kernels + pytest + cluster and its pods", f"{peak_all:.0f} MB",
            f"≤ {MEMORY_TARGET_MB:.0f} MB", peak_all <= MEMORY_TARGET_MB),
        Row("workshop", "  of which the cluster (daemon and pods)", f"{peak_cluster:.0f} MB"),
        Row("workshop", "labkit lab (cluster stopped) until JupyterLab answers: median",
            f"{common.summary(starts)['p50']:.2f} s"),
    ]
    common.report(rows, info, args.json, {"nbval_seconds": seconds, "lab_starts": starts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
