"""Time and peak memory of ``netdoctor check`` on a model file without data (synthetic inputs).

The default file is ``bench/models/resnet18_224.py``: ResNet-18 on 3x224x224 inputs, written out
in plain torch. Each run is ``python -m netdoctor.cli check FILE --format json`` in a fresh
process; its wall time and its peak resident memory (``ru_maxrss`` of the process and the worker
it waits for, from ``os.wait4``) are recorded with the batch size the JSON report gives.

``--before DIR`` names another checkout of netdoctor (e.g. ``git archive <commit> | tar -x -C DIR``,
with ``DIR/pkg/netdoctor`` a link to ``DIR/netdoctor`` and ``DIR/netdoctor/adapters`` one to
``DIR/adapters``): runs of that code (``PYTHONPATH=DIR/pkg``) are interleaved with runs of this
one, and the medians of both are printed.

Usage: ``python bench/bench_synthetic.py [--repeats 3] [--before DIR] [FILE] [-- extra check args]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", "resnet18_224.py")


def run(file: str, extra: list[str], pythonpath: str | None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, batch size) of one ``netdoctor check`` process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        cmd = [sys.executable, "-m", "netdoctor.cli", "check", file, "--format", "json", "--output", out,
               "--no-progress", "--timeout", "0", *extra]
        t0 = time.perf_counter()
        # run from the temporary folder: `python -m` puts the working directory first on sys.path,
        # which from a checkout would shadow the --before code
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)} failed ({code}): {err[-500:]}")
        with open(out, encoding="utf-8") as fh:
            batch = json.load(fh)["targets"][0]["batch_size"]
    return wall, usage.ru_maxrss / 1024, batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=DEFAULT_FILE)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", metavar="DIR", help="another netdoctor checkout to compare with (see above)")
    ap.add_argument("extra", nargs=argparse.REMAINDER, help="more `netdoctor check` arguments, after --")
    args = ap.parse_args()
    extra = [a for a in args.extra if a != "--"]
    file = os.path.abspath(args.file)
    variants = ([("before", os.path.join(args.before, "pkg"))] if args.before else []) + [("this tree", None)]
    rows: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _ in variants}
    for _ in range(args.repeats):
        for name, path in variants:
            rows[name].append(run(file, extra, path))
    print(f"{os.path.relpath(args.file)} (median of {args.repeats}, interleaved)")
    print(f"{'code':10} {'batch':>5} {'wall':>8} {'peak RSS':>10}")
    for name, runs in rows.items():
        wall = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        print(f"{name:10} {runs[0][2]:5d} {wall:7.1f}s {rss:7.0f} MiB")


if __name__ == "__main__":
    main()
