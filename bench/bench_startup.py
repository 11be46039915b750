"""Single-file start-up cost of ``netdoctor check``: a worker process vs checking in-process.

Every file is checked in a worker process (``netdoctor/modelfile/workers.py``), one file or
many. This script measures what that costs a one-file call, interleaving in one run:

* ``worker``: ``python -m netdoctor.cli check FILE --format json`` as users run it;
* ``in-process``: the same check and JSON rendering in the CLI's own process
  (``check_files(..., isolate=False)``, the single-file path before workers were used for one file).

Usage: ``python bench/bench_startup.py [--repeats 7] [FILE ...]`` (default: the torch and Keras
examples). Prints the median wall time of each and the difference.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

IN_PROCESS = """
import sys
from netdoctor.config import Config
from netdoctor.findings import Report
from netdoctor.modelfile.workers import CheckOptions, check_files
from netdoctor.reporters import render
res = check_files([sys.argv[1]], CheckOptions(config=Config()), isolate=False)
sys.stdout.write(render("json", Report.merge(r.report for r in res)))
"""


def run(cmd: list[str]) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", default=["examples/mlp_torch.py", "examples/mlp_keras.py"])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    print(f"{'file':28} {'in-process':>11} {'worker':>9} {'added':>8}   (median of {args.repeats}, interleaved)")
    for f in args.files:
        inproc, worker = [], []
        for _ in range(args.repeats):
            inproc.append(run([sys.executable, "-c", IN_PROCESS, f]))
            worker.append(run([sys.executable, "-m", "netdoctor.cli", "check", f, "--format", "json", "--no-progress"]))
        a, b = statistics.median(inproc), statistics.median(worker)
        print(f"{f:28} {a:10.2f}s {b:8.2f}s {b - a:+7.2f}s ({(b / a - 1) * 100:+.0f}%)")


if __name__ == "__main__":
    main()
