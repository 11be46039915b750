"""Detection benchmark: netdoctor and two published baselines on a labeled corpus of model files.

Run from the repository root::

    python bench/detect.py                       # whole corpus, prints the tables
    python bench/detect.py --json                # ... and writes bench/detect_results.json
    python bench/detect.py --framework torch --cases 'torch_f0*' --details
    python bench/detect.py --subset gate         # the regression-gate subset only
    python bench/detect.py --list                # cases and their labels

Each case is a model file in ``bench/cases/`` (netdoctor's model-file convention) with a
module-level ``EXPECT`` dict of labels (format in ``bench/README.md``). Torch cases and Keras
cases run in two separate worker subprocesses (TensorFlow and torch never share a process);
this parent process imports neither. A worker seeds the framework (``torch.manual_seed`` /
``keras.utils.set_random_seed``) before it loads each case, collects one snapshot as
``netdoctor.check`` does (same rule selection, same adapter call with
``ProbeSettings(seed=seed)``, then ``engine.run_rules``), plus what the baselines read beyond it
(``baselines.NEEDS``: the gradient moments and mean |activation|), and hands the same snapshot to
the baselines in ``bench/baselines.py``.

Scoring, per tool and rule code C: a case whose label says C must be raised is a true
positive when the tool raised C, else a false negative; a case whose label says C must not be
raised (healthy cases: every code, less ``allow``) is a false positive when the tool raised C.
netdoctor "raises" C with a finding at warning or error; for the info-level rules ND103 and
ND504, any finding. A case run with n seeds and detected in k counts k/n.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES_DIR = HERE / "cases"
RESULTS = HERE / "detect_results.json"
MARK = "@@ND-BENCH "
TOOLS = ("netdoctor", "autotrainer", "smdebugger")
FRAMEWORKS = ("torch", "keras")
SCHEMA = 1
CHECK_BUDGET_S = 2.0

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ==========================================================================================
# Cases and labels
# ==========================================================================================
@dataclass
class Case:
    """One labeled model file."""

    name: str
    path: Path
    framework: str
    raise_: tuple[str, ...]
    not_: tuple[str, ...]
    allow: tuple[str, ...]
    source: str
    seeds: int = 1
    gate: bool = False
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.raise_

    def must_not(self, codes: Iterable[str], warn_codes: frozenset[str]) -> set[str]:
        """Codes whose detection is a false positive on this case."""
        out = set(self.not_)
        if self.healthy:
            out |= set(warn_codes)
        return out - set(self.allow) - set(self.raise_)

    def label(self) -> dict[str, Any]:
        return {"raise": list(self.raise_), "not": list(self.not_), "allow": list(self.allow),
                "source": self.source, "seeds": self.seeds, "gate": self.gate, "note": self.note}


def rule_codes() -> dict[str, str]:
    """``{code: default severity}`` of the rules the benchmark scores (ND1xx-ND5xx: one-shot rules; the
    opt-in fit probe's ND509 runs only with ``--fit-probe``, see ``bench/bench_fit_probe.py``)."""
    from netdoctor.rules import registry
    from netdoctor.snapshot import Need

    return {c: s.severity.name.lower() for c, s in sorted(registry().items())
            if c[2] in "12345" and Need.FIT not in s.needs}


def _literal_expect(path: Path) -> dict[str, Any]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EXPECT" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{path.name}: no module-level EXPECT = {{...}} literal")


def framework_of(path: Path) -> str:
    """``torch`` or ``keras`` from the file's imports (without importing it); ``mixed``/``unknown`` else."""
    import re

    mods = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", path.read_text(encoding="utf-8"), flags=re.M))
    torchy = bool(mods & {"torch", "transformers", "_torchkit"})
    kerasy = bool(mods & {"keras", "tensorflow", "_keraskit"})
    return "mixed" if torchy and kerasy else "torch" if torchy else "keras" if kerasy else "unknown"


def load_cases(pattern: str | None = None, subset: str | None = None, framework: str | None = None) -> list[Case]:
    """All cases in ``bench/cases`` (files not starting with ``_``), validated."""
    codes = rule_codes()
    cases = []
    for path in sorted(CASES_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = path.stem
        if pattern and not any(fnmatch.fnmatch(name, p.strip()) or fnmatch.fnmatch(path.name, p.strip())
                               for p in pattern.split(",")):
            continue
        exp = _literal_expect(path)
        fw = framework_of(path)
        if fw not in FRAMEWORKS:
            raise ValueError(f"{path.name}: framework {fw!r} (a case imports torch or keras, not both)")
        unknown = set(exp) - {"raise", "not", "allow", "source", "seeds", "gate", "note"}
        if unknown:
            raise ValueError(f"{path.name}: unknown EXPECT keys {sorted(unknown)}")
        raise_, not_, allow = (tuple(exp.get(k, ())) for k in ("raise", "not", "allow"))
        for c in (*raise_, *not_, *allow):
            if c not in codes:
                raise ValueError(f"{path.name}: unknown or unscored rule code {c!r}")
        if set(raise_) & set(not_):
            raise ValueError(f"{path.name}: codes both in raise and not: {sorted(set(raise_) & set(not_))}")
        if raise_ and allow:
            raise ValueError(f"{path.name}: 'allow' is for healthy cases (faulty cases leave codes unlabeled)")
        if not str(exp.get("source", "")).strip():
            raise ValueError(f"{path.name}: EXPECT needs a 'source'")
        seeds = int(exp.get("seeds", 1))
        if seeds < 1:
            raise ValueError(f"{path.name}: seeds must be >= 1")
        case = Case(name, path, fw, raise_, not_, allow, str(exp["source"]), seeds, bool(exp.get("gate", False)),
                    str(exp.get("note", "")))
        if subset == "gate" and not case.gate:
            continue
        if framework and case.framework != framework:
            continue
        cases.append(case)
    return cases


# ==========================================================================================
# Worker (one framework per process)
# ==========================================================================================
def _seed(framework: str, seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    if framework == "torch":
        import torch

        torch.manual_seed(seed)
    else:
        import keras

        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)


def _versions(framework: str) -> dict[str, str]:
    import numpy

    import netdoctor

    v = {"python": platform.python_version(), "numpy": numpy.__version__, "netdoctor": netdoctor.__version__}
    try:
        import sklearn

        v["scikit-learn"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    if framework == "torch":
        import torch

        v["torch"] = torch.__version__
        try:
            import transformers

            v["transformers"] = transformers.__version__
        except ImportError:  # pragma: no cover
            pass
    else:
        import keras

        v["keras"] = keras.__version__
        v["keras_backend"] = keras.backend.backend()
        try:
            import tensorflow as tf

            v["tensorflow"] = tf.__version__
        except ImportError:  # pragma: no cover
            pass
    return v


def run_one(path: Path, framework: str, seed: int) -> dict[str, Any]:
    """Load ``path`` under ``seed``, check it like ``netdoctor.check`` does, score the baselines."""
    from baselines import DETECTORS, NEEDS

    from netdoctor.frameworks import get_adapter
    from netdoctor.config import Config
    from netdoctor.engine import merged_needs, run_rules, selected_rules
    from netdoctor.modelfile.loader import load_model_file
    from netdoctor.snapshot import ProbeSettings

    rec: dict[str, Any] = {"case": path.stem, "seed": seed, "status": "ok"}
    _seed(framework, seed)
    t0 = time.perf_counter()
    try:
        loaded = load_model_file(str(path), seed=seed)  # the loader seeds the case's own code
    except Exception as exc:  # the benchmark records it and goes on
        rec.update(status="load_error", error=f"{type(exc).__name__}: {exc}"[:500])
        return rec
    t1 = time.perf_counter()
    cfg = Config()
    specs = selected_rules(cfg, one_shot=True)
    try:
        snap = get_adapter(loaded.framework).collect(
            loaded.model, inputs=loaded.inputs, targets=loaded.targets, loss_fn=loaded.loss_fn,
            needs=merged_needs(specs) | NEEDS, settings=ProbeSettings(seed=seed), input_shape=loaded.input_shape)
        report = run_rules(snap, specs, cfg)
    except Exception as exc:
        rec.update(status="check_error", error=f"{type(exc).__name__}: {exc}"[:500], build_s=t1 - t0)
        return rec
    t2 = time.perf_counter()
    nd: dict[str, str] = {}
    findings = []
    order = {"info": 0, "warning": 1, "error": 2}
    for f in report.findings:
        sev = f.severity.name.lower()
        if order[sev] > order.get(nd.get(f.code, ""), -1):
            nd[f.code] = sev
        findings.append({"code": f.code, "severity": sev, "layer": f.layer, "message": f.message[:400]})
    rec["build_s"] = round(t1 - t0, 3)
    rec["check_s"] = round(t2 - t1, 3)
    rec["netdoctor"] = nd
    rec["findings"] = findings
    rec["skipped"] = [{"code": s.code, "reason": s.reason[:200]} for t in report.targets for s in t.skipped]
    for tool, fn in DETECTORS.items():
        try:
            rec[tool] = fn(snap)
        except Exception as exc:  # a baseline bug must not hide the others
            rec[tool] = {}
            rec.setdefault("baseline_errors", {})[tool] = f"{type(exc).__name__}: {exc}"[:300]
    return rec


def _limit_threads(framework: str, threads: int) -> None:
    """Pin the framework's thread pools (on a shared 2-core machine, spinning worker threads of two
    processes slow tiny models down 10-20x and make the timings meaningless)."""
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
    else:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def worker_main(framework: str, names: list[str], seeds: list[int], threads: int = 1) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.path.insert(0, str(HERE))
    import warnings

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    if threads > 0:
        _limit_threads(framework, threads)
    versions = _versions(framework)
    versions["threads"] = str(threads) if threads > 0 else "framework default"
    print(MARK + json.dumps({"versions": versions, "import_s": round(time.perf_counter() - t0, 2)}), flush=True)
    for name, n in zip(names, seeds):
        for seed in range(n):
            rec = run_one(CASES_DIR / f"{name}.py", framework, seed)
            print(MARK + json.dumps(rec, default=str), flush=True)
    return 0


def run_workers(cases: list[Case], jobs: int = 1, verbose: bool = False,
                threads: int = 1) -> tuple[list[dict], dict[str, Any]]:
    """Run the cases in one subprocess per framework; return the per-(case, seed) records and
    worker metadata (versions, wall times). ``threads`` caps each worker's compute threads
    (0: framework default)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow", "PYTHONWARNINGS": "ignore"}
    if threads > 0:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS"):
            env[var] = str(threads)
    env.pop("NETDOCTOR_STRICT", None)  # a crashing rule is recorded as skipped, as users see it
    procs = []
    for fw in FRAMEWORKS:
        sel = [c for c in cases if c.framework == fw]
        if not sel:
            continue
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", fw,
               "--names", ",".join(c.name for c in sel), "--seed-counts", ",".join(str(c.seeds) for c in sel),
               "--threads", str(threads)]
        procs.append((fw, cmd))
    records: list[dict] = []
    meta: dict[str, Any] = {"workers": {}}

    def consume(fw: str, proc: subprocess.Popen, t0: float) -> None:
        info: dict[str, Any] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith(MARK):
                continue
            obj = json.loads(line[len(MARK):])
            if "versions" in obj:
                info.update(obj)
                continue
            obj["framework"] = fw
            records.append(obj)
            if verbose:
                nd = ",".join(sorted(obj.get("netdoctor", {}))) or "-"
                print(f"  {fw:5s} {obj['case']:40s} seed {obj['seed']}  {obj['status']:11s} "
                      f"{obj.get('check_s', 0):5.2f}s  {nd}", file=sys.stderr, flush=True)
        rc = proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
        info.update(returncode=rc, wall_s=round(time.perf_counter() - t0, 1))
        if rc != 0:
            info["stderr_tail"] = err[-2000:]
        meta["workers"][fw] = info

    if jobs > 1 and len(procs) > 1:
        import threading

        started = [(fw, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                         cwd=ROOT), time.perf_counter()) for fw, cmd in procs]
        pool = [threading.Thread(target=consume, args=s) for s in started]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    else:
        for fw, cmd in procs:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
            consume(fw, proc, t0)
    return records, meta


# ==========================================================================================
# Scoring
# ==========================================================================================
def detected_codes(rec: dict[str, Any], tool: str, codes: dict[str, str]) -> set[str]:
    """Codes ``tool`` raised in one run (netdoctor: warning+, or any severity for info rules)."""
    if rec.get("status") != "ok":
        return set()
    if tool != "netdoctor":
        return set(rec.get(tool, {}))
    out = set()
    for code, sev in rec.get("netdoctor", {}).items():
        if code in codes and (sev in ("warning", "error") or codes[code] == "info"):
            out.add(code)
    return out


def score(cases: list[Case], records: list[dict], codes: dict[str, str] | None = None) -> dict[str, Any]:
    """Per-case detection fractions, per-rule counts and per-tool summaries."""
    from baselines import SCOPE

    codes = codes or rule_codes()
    warn_codes = frozenset(c for c, s in codes.items() if s != "info")
    by_case: dict[str, list[dict]] = {}
    for r in records:
        by_case.setdefault(r["case"], []).append(r)
    case_rows = []
    per_rule = {t: {c: {"cases": 0, "tp": 0.0, "fn": 0.0, "fp": 0.0, "negatives": 0, "flaky": 0} for c in codes}
                for t in TOOLS}
    healthy = {t: {"cases": 0, "any": 0.0, "error": 0.0} for t in TOOLS}
    for case in cases:
        runs = sorted(by_case.get(case.name, []), key=lambda r: r["seed"])
        n = max(len(runs), 1)
        must_not = case.must_not(codes, warn_codes)
        row: dict[str, Any] = {"name": case.name, "framework": case.framework, "healthy": case.healthy,
                               **case.label(), "runs": len(runs),
                               "status": sorted({r["status"] for r in runs}) or ["missing"],
                               "check_s": max((r.get("check_s", 0.0) for r in runs), default=None),
                               "errors": sorted({r["error"] for r in runs if r.get("error")}),
                               "skipped": sorted({f"{s['code']}: {s['reason']}" for r in runs for s in r.get("skipped", [])
                                                  if "crashed" in s["reason"]}),
                               "detected": {}, "misses": {}, "false_alarms": {}}
        for tool in TOOLS:
            frac: dict[str, float] = {}
            for r in runs:
                for c in detected_codes(r, tool, codes):
                    frac[c] = frac.get(c, 0.0) + 1.0 / n
            frac = {c: round(v, 4) for c, v in frac.items()}
            row["detected"][tool] = frac
            scope = SCOPE.get(tool)
            for c in case.raise_:
                if scope is not None and c not in scope:
                    continue
                d = frac.get(c, 0.0)
                pr = per_rule[tool][c]
                pr["cases"] += 1
                pr["tp"] += d
                pr["fn"] += 1 - d
                pr["flaky"] += 0 < d < 1
            for c in must_not:
                if scope is not None and c not in scope:
                    continue
                d = frac.get(c, 0.0)
                pr = per_rule[tool][c]
                pr["negatives"] += 1
                pr["fp"] += d
                pr["flaky"] += 0 < d < 1
            row["misses"][tool] = {c: round(1 - frac.get(c, 0.0), 4) for c in case.raise_ if frac.get(c, 0.0) < 1
                                   and (scope is None or c in scope)}
            row["false_alarms"][tool] = {c: frac[c] for c in sorted(must_not) if frac.get(c, 0.0) > 0}
            if case.healthy:
                h = healthy[tool]
                h["cases"] += 1
                allowed = set(case.allow)
                any_, err = 0.0, 0.0
                for r in runs:
                    if tool == "netdoctor":
                        sev = {c: s for c, s in r.get("netdoctor", {}).items() if c not in allowed}
                        any_ += any(s in ("warning", "error") for s in sev.values()) / n
                        err += any(s == "error" for s in sev.values()) / n
                    else:
                        got = bool(detected_codes(r, tool, codes) - allowed)
                        any_ += got / n
                        err += got / n
                h["any"] += any_
                h["error"] += err
                row.setdefault("healthy_alarm", {})[tool] = round(any_, 4)
        case_rows.append(row)
    summary = {}
    for tool in TOOLS:
        scope = SCOPE.get(tool)
        tp = sum(v["tp"] for v in per_rule[tool].values())
        fn = sum(v["fn"] for v in per_rule[tool].values())
        fp = sum(v["fp"] for v in per_rule[tool].values())
        labels_all = sum(len(c.raise_) for c in cases)
        h = healthy[tool]
        summary[tool] = {
            "scope": sorted(scope) if scope is not None else sorted(codes),
            "labels_in_scope": tp + fn, "labels_all": labels_all,
            "tp": round(tp, 4), "fn_in_scope": round(fn, 4), "fp": round(fp, 4),
            "precision": _ratio(tp, tp + fp), "recall_in_scope": _ratio(tp, tp + fn),
            "recall_all": _ratio(tp, labels_all),
            "healthy_cases": h["cases"], "healthy_any": round(h["any"], 4), "healthy_error": round(h["error"], 4),
            "false_alarm_rate": _ratio(h["any"], h["cases"]), "error_alarm_rate": _ratio(h["error"], h["cases"]),
        }
    for tool in TOOLS:
        for c, v in per_rule[tool].items():
            v["tp"], v["fn"], v["fp"] = round(v["tp"], 4), round(v["fn"], 4), round(v["fp"], 4)
            v["precision"] = _ratio(v["tp"], v["tp"] + v["fp"])
            v["recall"] = _ratio(v["tp"], v["tp"] + v["fn"])
    return {"cases": case_rows, "per_rule": per_rule, "summary": summary}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def gate_numbers(cases: list[Case], scored: dict[str, Any]) -> dict[str, Any]:
    """The committed numbers the test gate compares against: per framework, over gate cases."""
    out: dict[str, Any] = {}
    rows = {r["name"]: r for r in scored["cases"]}
    codes = rule_codes()
    warn_codes = frozenset(c for c, s in codes.items() if s != "info")
    for fw in FRAMEWORKS:
        sel = [c for c in cases if c.gate and c.framework == fw]
        if not sel:
            continue
        per_rule: dict[str, dict[str, float]] = {}
        detail = {}
        for c in sel:
            row = rows[c.name]
            det = row["detected"]["netdoctor"]
            for code in c.raise_:
                pr = per_rule.setdefault(code, {"tp": 0.0, "fp": 0.0})
                pr["tp"] = round(pr["tp"] + det.get(code, 0.0), 4)
            for code in c.must_not(codes, warn_codes):
                if det.get(code, 0.0) > 0:
                    pr = per_rule.setdefault(code, {"tp": 0.0, "fp": 0.0})
                    pr["fp"] = round(pr["fp"] + det[code], 4)
            detail[c.name] = {"detected": det, "raise": list(c.raise_)}
        healthy = [rows[c.name] for c in sel if c.healthy]
        out[fw] = {
            "cases": [c.name for c in sel],
            "labels": sum(len(c.raise_) for c in sel),
            "tp": round(sum(v["tp"] for v in per_rule.values()), 4),
            "fp": round(sum(v["fp"] for v in per_rule.values()), 4),
            "per_rule": dict(sorted(per_rule.items())),
            "healthy_cases": len(healthy),
            "healthy_any": round(sum(r["healthy_alarm"]["netdoctor"] for r in healthy), 4),
            "detail": detail,
        }
    return out


# ==========================================================================================
# Printing
# ==========================================================================================
def _f(x: float | None, pct: bool = False) -> str:
    """A count (``3``, ``4.60``) or, with ``pct``, a share (``7%``); ``-`` for undefined."""
    if x is None:
        return "-"
    if pct:
        return f"{100 * x:.0f}%"
    return f"{x:.2f}" if abs(x - round(x)) > 1e-9 else str(int(round(x)))


def _p(x: float | None) -> str:
    """A precision/recall: ``0.96``, ``1.00``; ``-`` for undefined."""
    return "-" if x is None else f"{x:.2f}"


def format_tables(cases: list[Case], scored: dict[str, Any], codes: dict[str, str]) -> str:
    from baselines import SCOPE

    lines: list[str] = []
    nf = sum(not c.healthy for c in cases)
    nh = len(cases) - nf
    by_fw = {fw: (sum(c.framework == fw and not c.healthy for c in cases), sum(c.framework == fw and c.healthy for c in cases))
             for fw in FRAMEWORKS}
    runs = sum(c.seeds for c in cases)
    lines.append(f"{len(cases)} cases ({nf} faulty, {nh} healthy; torch {by_fw['torch'][0]}+{by_fw['torch'][1]}, "
                 f"keras {by_fw['keras'][0]}+{by_fw['keras'][1]}), {runs} runs with seeds")
    lines.append("")
    lines.append("netdoctor per rule (TP/FN/FP are case counts; seed-dependent cases count k/n)")
    hdr = f"{'rule':6s} {'sev':7s} {'cases':>5s} {'TP':>6s} {'FN':>6s} {'FP':>6s} {'prec':>5s} {'recall':>6s} {'flaky':>5s}"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    pr = scored["per_rule"]["netdoctor"]
    for c in codes:
        v = pr[c]
        lines.append(f"{c:6s} {codes[c]:7s} {v['cases']:5d} {_f(v['tp']):>6s} {_f(v['fn']):>6s} {_f(v['fp']):>6s} "
                     f"{_p(v['precision']):>5s} {_p(v['recall']):>6s} {v['flaky']:5d}")
    lines.append("")
    lines.append("Per rule, netdoctor vs baselines (precision / recall; '.' = outside the baseline's scope)")
    hdr = f"{'rule':6s} {'cases':>5s}  {'netdoctor':>13s}  {'AUTOTRAINER':>13s}  {'SMDebugger':>13s}"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for c in codes:
        cells = []
        for tool in TOOLS:
            scope = SCOPE.get(tool)
            if scope is not None and c not in scope:
                cells.append(f"{'.':>13s}")
                continue
            v = scored["per_rule"][tool][c]
            cells.append(f"{_p(v['precision']):>5s} / {_p(v['recall']):>5s}")
        lines.append(f"{c:6s} {pr[c]['cases']:5d}  " + "  ".join(cells))
    lines.append("")
    lines.append("Combined")
    hdr = (f"{'tool':36s} {'codes':>5s} {'labels':>6s} {'TP':>6s} {'FP':>6s} {'prec':>5s} {'rec(scope)':>10s} "
           f"{'rec(all)':>8s} {'healthy FA':>10s} {'FA error':>8s}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    from baselines import TITLES

    for tool in TOOLS:
        s = scored["summary"][tool]
        lines.append(f"{TITLES[tool]:36s} {len(s['scope']):5d} {_f(s['labels_in_scope']):>6s} {_f(s['tp']):>6s} "
                     f"{_f(s['fp']):>6s} {_p(s['precision']):>5s} {_p(s['recall_in_scope']):>10s} "
                     f"{_p(s['recall_all']):>8s} {_f(s['false_alarm_rate'], True):>10s} "
                     f"{(_f(s['error_alarm_rate'], True) if tool == 'netdoctor' else '-'):>8s}")
    lines.append(f"  healthy FA = share of the {scored['summary']['netdoctor']['healthy_cases']} healthy cases with any "
                 "warning-or-error finding (netdoctor) / any detection (baselines); FA error = with an error finding")
    warn_codes = frozenset(c for c, s in codes.items() if s != "info")
    by_name = {c.name: c for c in cases}
    flaky = []
    for r in scored["cases"]:
        case = by_name[r["name"]]
        must_not = case.must_not(codes, warn_codes)
        for c in sorted(set().union(*(r["detected"][t] for t in TOOLS))):
            d = {t: r["detected"][t].get(c, 0.0) for t in TOOLS}
            if any(0 < v < 1 for v in d.values()):
                label = "raise" if c in case.raise_ else "not" if c in must_not else "unlabeled"
                flaky.append((r["name"], c, label, d, r["runs"]))
    if flaky:
        lines.append("")
        lines.append("Seed-dependent results (share of seeds that raised the code: netdoctor / AUTOTRAINER / SMDebugger)")
        for name, c, label, d, n in flaky:
            lines.append(f"  {name:44s} {c} {label:9s} {d['netdoctor']:.2f} / {d['autotrainer']:.2f} / "
                         f"{d['smdebugger']:.2f}  ({n} seeds)")
    lines.append("")
    lines.append("netdoctor misses (label says raise) and false alarms (label says not)")
    for r in scored["cases"]:
        m = r["misses"]["netdoctor"]
        fa = r["false_alarms"]["netdoctor"]
        if not (m or fa or r["errors"] or r["skipped"]):
            continue
        bits = []
        if m:
            bits.append("missed " + ", ".join(c if v == 1 else f"{c} ({v:.2f})" for c, v in m.items()))
        if fa:
            bits.append("false alarm " + ", ".join(c if v == 1 else f"{c} ({v:.2f})" for c, v in fa.items()))
        if r["errors"]:
            bits.append("ERROR " + r["errors"][0][:120])
        if r["skipped"]:
            bits.append("rule crash " + r["skipped"][0][:120])
        lines.append(f"  {r['name']:42s} " + "; ".join(bits))
    slow = [(r["name"], r["check_s"]) for r in scored["cases"] if r["check_s"] and r["check_s"] > CHECK_BUDGET_S]
    if slow:
        lines.append("")
        lines.append(f"Cases over the {CHECK_BUDGET_S:g} s check budget: " +
                     ", ".join(f"{n} {t:.1f}s" for n, t in sorted(slow, key=lambda x: -x[1])))
    return "\n".join(lines)


def format_details(scored: dict[str, Any], records: list[dict]) -> str:
    lines = []
    by = {}
    for r in records:
        by.setdefault(r["case"], []).append(r)
    for row in scored["cases"]:
        lines.append(f"{row['name']}  [{row['framework']}, {'healthy' if row['healthy'] else 'faulty'}] "
                     f"raise={row['raise']} not={row['not']} allow={row['allow']}")
        for r in sorted(by.get(row["name"], []), key=lambda x: x["seed"]):
            lines.append(f"  seed {r['seed']}: {r['status']} check {r.get('check_s', 0):.2f}s "
                         f"AT={sorted(r.get('autotrainer', {}))} SM={sorted(r.get('smdebugger', {}))}")
            if r.get("error"):
                lines.append(f"    {r['error']}")
            for f in r.get("findings", []):
                lines.append(f"    {f['code']} {f['severity']:7s} {f['layer']}: {f['message'][:160]}")
    return "\n".join(lines)


# ==========================================================================================
# JSON and main
# ==========================================================================================
def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"os": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version()}


def git_rev() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def build_json(cases: list[Case], scored: dict[str, Any], meta: dict[str, Any], records: list[dict],
               full: bool) -> dict[str, Any]:
    versions: dict[str, str] = {}
    for info in meta["workers"].values():
        versions.update(info.get("versions", {}))
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["case"], []).append(r)
    for row in scored["cases"]:
        row["findings"] = sorted({(f["code"], f["severity"], f["layer"] or "", f["message"])
                                  for r in by.get(row["name"], []) for f in r.get("findings", [])})
        row["findings"] = [{"code": c, "severity": s, "layer": l, "message": m} for c, s, l, m in row["findings"]]
        row["baseline_evidence"] = {t: {k: v for r in by.get(row["name"], []) for k, v in r.get(t, {}).items()}
                                    for t in TOOLS[1:]}
    out = {
        "schema": SCHEMA,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_rev(),
        "machine": machine(),
        "versions": versions,
        "workers": {fw: {k: v for k, v in info.items() if k in ("wall_s", "import_s", "returncode")}
                    for fw, info in meta["workers"].items()},
        "full_corpus": full,
        "counts": {"cases": len(cases), "faulty": sum(not c.healthy for c in cases),
                   "healthy": sum(c.healthy for c in cases),
                   "torch": sum(c.framework == "torch" for c in cases),
                   "keras": sum(c.framework == "keras" for c in cases),
                   "runs": sum(c.seeds for c in cases)},
        "summary": scored["summary"],
        "per_rule": scored["per_rule"],
        "gate": gate_numbers(cases, scored),
        "cases": scored["cases"],
    }
    return out


def show(path: Path) -> int:
    """Print the tables of a saved run (labels from the JSON, so an edited corpus does not matter)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    cases = [Case(r["name"], CASES_DIR / f"{r['name']}.py", r["framework"], tuple(r["raise"]), tuple(r["not"]),
                  tuple(r["allow"]), r["source"], r["seeds"], r["gate"], r.get("note", "")) for r in data["cases"]]
    scored = {"cases": data["cases"], "per_rule": data["per_rule"], "summary": data["summary"]}
    codes = {c: v for c, v in rule_codes().items() if c in data["per_rule"]["netdoctor"]}
    v = data["versions"]
    print(f"netdoctor detection benchmark  {data['date']}  git {data.get('git')}  "
          + "  ".join(f"{k} {v[k]}" for k in ("torch", "keras", "tensorflow", "transformers", "scikit-learn") if k in v)
          + f"  ({data['machine'].get('cpus')} CPUs, {v.get('threads', '?')} thread per worker)")
    print(format_tables(cases, scored, codes))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--framework", choices=FRAMEWORKS, help="run only the cases of one framework")
    ap.add_argument("--cases", help="comma-separated glob(s) of case names, e.g. 'torch_f0*,keras_h*'")
    ap.add_argument("--subset", choices=("gate",), help="only the cases labeled gate=True")
    ap.add_argument("--json", nargs="?", const=str(RESULTS), metavar="PATH",
                    help=f"write the results as JSON (default path {RESULTS.relative_to(ROOT)}; a partial run needs "
                         "an explicit other path)")
    ap.add_argument("--details", action="store_true", help="print every finding of every run")
    ap.add_argument("--list", action="store_true", help="list the cases and their labels, run nothing")
    ap.add_argument("--jobs", type=int, default=1, help="run the torch and keras workers in parallel (2)")
    ap.add_argument("--threads", type=int, default=1,
                    help="compute threads per worker (default 1; 0 = the frameworks' defaults)")
    ap.add_argument("-v", "--verbose", action="store_true", help="one progress line per run on stderr")
    ap.add_argument("--show", nargs="?", const=str(RESULTS), metavar="PATH",
                    help="print the tables of a saved JSON run (default: the committed one), run nothing")
    ap.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    ap.add_argument("--names", help=argparse.SUPPRESS)
    ap.add_argument("--seed-counts", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        names = args.names.split(",") if args.names else []
        seeds = [int(s) for s in args.seed_counts.split(",")] if args.seed_counts else [1] * len(names)
        return worker_main(args.worker, names, seeds, args.threads)

    if args.show:
        return show(Path(args.show))
    cases = load_cases(args.cases, args.subset, args.framework)
    if not cases:
        print("no cases selected", file=sys.stderr)
        return 2
    if args.list:
        for c in cases:
            kind = "healthy" if c.healthy else "faulty"
            lab = f"raise={','.join(c.raise_) or '-'} not={','.join(c.not_) or '-'}"
            if c.allow:
                lab += f" allow={','.join(c.allow)}"
            print(f"{c.name:44s} {c.framework:5s} {kind:7s} seeds={c.seeds} {'gate ' if c.gate else ''}{lab}")
            print(f"{'':44s} source: {c.source}")
        return 0
    full = not (args.framework or args.cases or args.subset)
    if args.json and Path(args.json).resolve() == RESULTS and not full:
        print(f"refusing to overwrite {RESULTS.relative_to(ROOT)} with a partial run; pass another path",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    records, meta = run_workers(cases, jobs=args.jobs, verbose=args.verbose, threads=args.threads)
    for fw, info in meta["workers"].items():
        if info.get("returncode"):
            print(f"{fw} worker failed (exit {info['returncode']}):\n{info.get('stderr_tail', '')}", file=sys.stderr)
    codes = rule_codes()
    scored = score(cases, records, codes)
    versions: dict[str, str] = {}
    for info in meta["workers"].values():
        versions.update(info.get("versions", {}))
    head = (f"netdoctor detection benchmark  {datetime.now().strftime('%Y-%m-%d')}  "
            + "  ".join(f"{k} {versions[k]}" for k in ("torch", "keras", "tensorflow", "transformers", "scikit-learn")
                        if k in versions)
            + f"  ({machine()['cpus']} CPUs)")
    print(head)
    print(format_tables(cases, scored, codes))
    if args.details:
        print()
        print(format_details(scored, records))
    wall = time.perf_counter() - t0
    print(f"\nwall time {wall:.0f} s (" + ", ".join(f"{fw} worker {i.get('wall_s')} s" for fw, i in meta["workers"].items())
          + ")")
    if args.json:
        data = build_json(cases, scored, meta, records, full)
        Path(args.json).write_text(json.dumps(data, indent=1, sort_keys=False, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    failed = any(info.get("returncode") for info in meta["workers"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
