"""Target: ``%load_ext labkit`` costs at most 0.3 s on top of starting IPython.

Each run is a fresh Python process that creates an IPython ``InteractiveShell`` and, in the
measured variant, runs ``%load_ext labkit``; the baseline does the same without labkit.
Runs alternate between the two variants. The result is the median wall time of the labkit
processes minus the median of the baseline ones (what a learner waits for, interpreter and
imports included), and, as a check, the median time of the ``load_ext`` call itself as
measured inside each process. No cluster is started: loading the extension connects to
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common
from common import Row

TARGET_S = 0.3
SHELL = (
    "import time, json; from IPython.core.interactiveshell import InteractiveShell; "
    "ip = InteractiveShell.instance(); t0 = time.perf_counter(); {load}; "
    "print(json.dumps({{'load_ext': time.perf_counter() - t0}}))"
)
WITH_LABKIT = SHELL.format(load="ip.run_line_magic('load_ext', 'labkit')")
BASELINE = SHELL.format(load="pass")


def one_run(code: str) -> tuple[float, float]:
    """(wall seconds of the whole process, seconds of the load_ext call inside it)."""
    env = {**os.environ, "PYTHONPATH": str(common.ROOT)}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"the measured process failed:\n{done.stderr}")
    inside = json.loads(done.stdout.strip().splitlines()[-1])["load_ext"]
    return wall, inside


def main() -> int:
    """Measure and report; the exit status is non-zero only if a run could not be made."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=common.bounded_int(1, 200), default=15, help="runs of each variant")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    opts = parser.parse_args()
    one_run(WITH_LABKIT)  # warm the file cache (and write bytecode once) before measuring
    labkit_walls, base_walls, inside = [], [], []
    for i in range(opts.runs):
        wall, load = one_run(WITH_LABKIT)
        labkit_walls.append(wall)
        inside.append(load)
        base_walls.append(one_run(BASELINE)[0])
        print(
            f"run {i + 1}/{opts.runs}: with labkit {wall:.3f} s, without {base_walls[-1]:.3f} s", flush=True
        )
    added = statistics.median(labkit_walls) - statistics.median(base_walls)
    rows = [
        Row(
            "magics",
            "%load_ext labkit, added process time (median)",
            f"{added:.3f} s",
            "<= 0.3 s",
            added <= TARGET_S,
        ),
        Row("magics", "load_ext call inside the process (median)", f"{statistics.median(inside):.3f} s"),
        Row("magics", "IPython shell without labkit (median)", f"{statistics.median(base_walls):.3f} s"),
    ]
    extra = {"with_labkit_s": labkit_walls, "baseline_s": base_walls, "load_ext_s": inside}
    common.report(rows, common.machine(), opts.json, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
