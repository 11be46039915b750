"""How many findings ``--verify`` can prove fixed, and what it costs.

Run: ``python bench/bench_verify.py [--framework torch|keras] [--repeats N]``. Over the bad
examples of ``examples/rules/`` (``bad.py`` for torch, ``bad_keras.py`` for Keras; each framework
in its own subprocess, so TensorFlow and torch never share one), every file is checked with
``netdoctor.check(...)`` and with ``netdoctor.check(..., verify=True)`` in the same process,
interleaved ``--repeats`` times (median), after one warm-up round on the first file so that
import and tracing costs of the first call are not charged to one example.

Printed: one row per example (findings, verdicts, check time, check + verify time, time
added) and a summary per framework: the share of findings whose fix was verified (of all
findings and of those with a mechanical fix) and the time ``--verify`` adds (total, median
per file, and the ratio to the plain check).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PATTERNS = {"torch": "bad.py", "keras": "bad_keras.py"}


def worker(framework: str, repeats: int) -> list[dict[str, Any]]:
    """Check every bad example of ``framework`` with and without verify (in this process)."""
    warnings.simplefilter("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from netdoctor.api import check
    from netdoctor.modelfile.loader import load_model_file

    files = sorted(glob.glob(str(REPO / "examples" / "rules" / "*" / PATTERNS[framework])))
    rows: list[dict[str, Any]] = []
    for i, path in enumerate(files):
        loaded = load_model_file(path)

        def run(verify: bool, loaded: Any = loaded) -> Any:
            return check(loaded.model, loaded.inputs, loaded.targets, loss_fn=loaded.loss_fn,
                         input_shape=loaded.input_shape, verify=verify)

        if i == 0:  # warm-up: imports, first traces
            run(False)
            run(True)
        plain, verified, report = [], [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            run(False)
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = run(True)
            verified.append(time.perf_counter() - t0)
        verdicts = [f.verification["verdict"] for f in report.findings]
        rows.append({
            "example": Path(path).parent.name,
            "findings": [f"{f.code}:{f.verification['verdict']}" for f in report.findings],
            "verified": verdicts.count("verified"),
            "not_verified": verdicts.count("not verified"),
            "no_fix": verdicts.count("no automatic fix"),
            "check_s": statistics.median(plain),
            "verify_s": statistics.median(verified),
        })
    return rows


def run_framework(framework: str, repeats: int) -> list[dict[str, Any]]:
    """Run :func:`worker` for one framework in a fresh subprocess; its rows come back as JSON."""
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", framework, "--repeats", str(repeats)],
        check=False, capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"{framework} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(framework: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"{framework}: {len(rows)} bad examples",
             (f"  {'example':<34} {'find':>4} {'ver':>4} {'not':>4} {'none':>4} {'check s':>8} {'+verify s':>9} "
              f"{'added s':>8}")]
    for r in rows:
        n = r["verified"] + r["not_verified"] + r["no_fix"]
        lines.append(f"  {r['example']:<34} {n:>4} {r['verified']:>4} {r['not_verified']:>4} {r['no_fix']:>4} "
                     f"{r['check_s']:>8.2f} {r['verify_s']:>9.2f} {r['verify_s'] - r['check_s']:>8.2f}")
    lines.append(summary(rows))
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    ver = sum(r["verified"] for r in rows)
    nover = sum(r["not_verified"] for r in rows)
    nofix = sum(r["no_fix"] for r in rows)
    total = ver + nover + nofix
    plain = sum(r["check_s"] for r in rows)
    added = [r["verify_s"] - r["check_s"] for r in rows]
    return (f"  verified {ver}/{total} findings ({100 * ver / max(total, 1):.0f}%), "
            f"{ver}/{ver + nover} of those with a mechanical fix ({100 * ver / max(ver + nover, 1):.0f}%); "
            f"not verified {nover}, no automatic fix {nofix}\n"
            f"  --verify adds {sum(added):.1f} s over {len(rows)} files (median {statistics.median(added):.2f} s "
            f"per file; plain checks {plain:.1f} s, {(plain + sum(added)) / max(plain, 1e-9):.1f}x with verify)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framework", choices=sorted(PATTERNS), action="append")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--worker", choices=sorted(PATTERNS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        rows = worker(args.worker, args.repeats)
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for framework in args.framework or sorted(PATTERNS, reverse=True):
        rows = run_framework(framework, args.repeats)
        print(table(framework, rows))
        for r in rows:
            if r["not_verified"]:
                print(f"    not verified in {r['example']}: {', '.join(x for x in r['findings'] if ':not' in x)}")
        print()


if __name__ == "__main__":
    main()
