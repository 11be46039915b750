"""What ``--fit-probe`` costs relative to ``check``, and what it says on the detection corpus.

Run: ``python bench/bench_fit_probe.py [--framework torch|keras] [--cases GLOB] [--repeats N]``.
Every case of ``bench/cases/`` (each framework in its own subprocess, so TensorFlow and torch
never share one) is loaded the way ``bench/detect.py`` loads it and checked with
``netdoctor.check(...)`` and ``netdoctor.check(..., fit_probe=True)`` in the same process,
interleaved ``--repeats`` times (median), after one warm-up round on the first case.

Printed: one row per case (healthy or faulty, final/initial loss of the fit probe, whether ND509
fired, check time, check + fit-probe time, ratio) and per framework the median and total ratio of
the two times, the ND509 false alarms on healthy cases and its hits on faulty ones.
"""

from __future__ import annotations

import argparse
import fnmatch
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
CASES = REPO / "bench" / "cases"


def _cases(framework: str, pattern: str) -> list[Path]:
    return [p for p in sorted(CASES.glob(f"{framework}_*.py")) if fnmatch.fnmatch(p.stem, pattern)]


def worker(framework: str, pattern: str, repeats: int) -> list[dict[str, Any]]:
    warnings.simplefilter("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(CASES))
    import ast

    from netdoctor.api import check
    from netdoctor.modelfile.loader import load_model_file

    if framework == "torch":
        import torch

        torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    for i, path in enumerate(_cases(framework, pattern)):
        loaded = load_model_file(str(path))
        expect = next(ast.literal_eval(n.value) for n in ast.parse(path.read_text()).body
                      if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "EXPECT" for t in n.targets))
        healthy = not expect.get("raise")

        def run(fit: bool, loaded: Any = loaded) -> Any:
            return check(loaded.model, loaded.inputs, loaded.targets, loss_fn=loaded.loss_fn,
                         input_shape=loaded.input_shape, fit_probe=fit)

        if i == 0:
            run(False)
            run(True)
        plain, fitted, report = [], [], None
        for _ in range(repeats):
            t0 = time.perf_counter()
            run(False)
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = run(True)
            fitted.append(time.perf_counter() - t0)
        nd509 = [f for f in report.findings if f.code == "ND509"]
        skipped = [s.reason for s in report.skipped if s.code == "ND509"]
        ratio = None
        if nd509:
            ratio = nd509[0].evidence["ratio"]
        rows.append({"case": path.stem, "healthy": healthy, "nd509": str(nd509[0].severity) if nd509 else None,
                     "ratio": ratio,
                     "skipped": skipped[0] if skipped else None,
                     "check_s": statistics.median(plain), "fit_s": statistics.median(fitted)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framework", choices=["torch", "keras"])
    ap.add_argument("--cases", default="*")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.framework, a.cases, a.repeats)))
        return
    for fw in ([a.framework] if a.framework else ["torch", "keras"]):
        out = subprocess.run([sys.executable, __file__, "--worker", "--framework", fw, "--cases", a.cases,
                              "--repeats", str(a.repeats)], capture_output=True, text=True, check=True)
        rows = json.loads(out.stdout.strip().splitlines()[-1])
        if not rows:
            continue
        print(f"{fw}: {len(rows)} cases")
        print(f"  {'case':48s} {'kind':7s} {'ND509':7s} {'ratio':>6s} {'check':>7s} {'+fit':>7s} {'x':>5s}")
        for r in rows:
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(f"  {r['case']:48s} {'healthy' if r['healthy'] else 'faulty':7s} {r['nd509'] or '-':7s} "
                  f"{ratio:>6s} {r['check_s']:7.2f} {r['fit_s']:7.2f} {r['fit_s'] / r['check_s']:5.1f}"
                  + (f"  (skipped: {r['skipped']})" if r["skipped"] else ""))
        ratios = [r["fit_s"] / r["check_s"] for r in rows]
        tot_c, tot_f = sum(r["check_s"] for r in rows), sum(r["fit_s"] for r in rows)
        fa = [r["case"] for r in rows if r["healthy"] and r["nd509"] in ("warning", "error")]
        info = [r["case"] for r in rows if r["healthy"] and r["nd509"] == "info"]
        hits = sum(1 for r in rows if not r["healthy"] and r["nd509"] in ("warning", "error"))
        print(f"  check + fit probe / check: median {statistics.median(ratios):.1f}x, total {tot_f / tot_c:.1f}x "
              f"({tot_c:.1f} s -> {tot_f:.1f} s)")
        print(f"  ND509 warning on healthy cases: {len(fa)} of {sum(r['healthy'] for r in rows)} {fa if fa else ''} "
              f"(info on {len(info)}); warning on faulty cases: {hits} of {sum(not r['healthy'] for r in rows)}")


if __name__ == "__main__":
    main()
