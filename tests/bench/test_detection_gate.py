"""Regression gate: recall and false alarms on the gate subset of the detection benchmark are no worse
than the committed numbers in ``bench/detect_results.json``.

The gate cases are the ones labeled ``"gate": True`` in ``bench/cases/``; the torch and the Keras
ones run in two worker subprocesses (in parallel, one compute thread each), exactly as
``python bench/detect.py`` runs them. When a rule or adapter change *improves* the numbers, the test
passes; commit the improvement with ``python bench/detect.py --json``. When it fails, the message
names the cases that changed; ``python bench/detect.py --cases NAME --details`` shows the findings.
"""

from __future__ import annotations

import importlib.util
import json
import time

import pytest

from _bench import BENCH, load

pytestmark = pytest.mark.slow

detect = load("detect")
EPS = 1e-6


@pytest.fixture(scope="module")
def gate():
    committed = json.loads((BENCH / "detect_results.json").read_text(encoding="utf-8"))["gate"]
    cases = detect.load_cases(subset="gate")
    # find_spec, not import: the pytest process must not pay for (or mix) torch and TensorFlow
    available = [fw for fw in ("torch", "keras") if importlib.util.find_spec(fw) is not None]
    cases = [c for c in cases if c.framework in available]
    t0 = time.perf_counter()
    records, meta = detect.run_workers(cases, jobs=2)
    wall = time.perf_counter() - t0
    for fw, info in meta["workers"].items():
        assert info.get("returncode") == 0, f"{fw} worker failed:\n{info.get('stderr_tail', '')}"
    scored = detect.score(cases, records)
    return committed, detect.gate_numbers(cases, scored), scored, available, wall


def _changes(fw: str, committed: dict, current: dict) -> str:
    lines = []
    for name, now in current[fw]["detail"].items():
        before = committed[fw]["detail"].get(name, {}).get("detected", {})
        for code in sorted(set(before) | set(now["detected"])):
            a, b = before.get(code, 0.0), now["detected"].get(code, 0.0)
            if abs(a - b) > EPS:
                lines.append(f"  {name}: {code} raised in {a:.2f} -> {b:.2f} of the seeds")
    return "\n".join(lines) or "  (no per-case change recorded)"


@pytest.mark.parametrize("fw", ["torch", "keras"])
def test_gate_cases_match_the_committed_run(gate, fw):
    committed, current, _, available, _ = gate
    if fw not in available:
        pytest.skip(f"{fw} is not installed")
    assert current[fw]["cases"] == committed[fw]["cases"], (
        "the gate subset changed since bench/detect_results.json was written: run `python bench/detect.py --json`")


@pytest.mark.parametrize("fw", ["torch", "keras"])
def test_recall_not_worse(gate, fw):
    committed, current, _, available, _ = gate
    if fw not in available:
        pytest.skip(f"{fw} is not installed")
    worse = [f"{code}: {v['tp']:.2f} true positives, committed {committed[fw]['per_rule'][code]['tp']:.2f}"
             for code, v in current[fw]["per_rule"].items()
             if code in committed[fw]["per_rule"] and v["tp"] < committed[fw]["per_rule"][code]["tp"] - EPS]
    assert not worse, (f"{fw} gate: recall dropped\n  " + "\n  ".join(worse) + "\nchanged cases:\n"
                       + _changes(fw, committed, current))


@pytest.mark.parametrize("fw", ["torch", "keras"])
def test_false_alarms_not_worse(gate, fw):
    committed, current, _, available, _ = gate
    if fw not in available:
        pytest.skip(f"{fw} is not installed")
    before = committed[fw]
    now = current[fw]
    worse = [f"{code}: {v['fp']:.2f} false positives, committed {before['per_rule'].get(code, {}).get('fp', 0.0):.2f}"
             for code, v in now["per_rule"].items() if v["fp"] > before["per_rule"].get(code, {}).get("fp", 0.0) + EPS]
    if now["healthy_any"] > before["healthy_any"] + EPS:
        worse.append(f"healthy cases with a warning or error: {now['healthy_any']:.2f}, committed "
                     f"{before['healthy_any']:.2f}")
    assert not worse, (f"{fw} gate: more false alarms\n  " + "\n  ".join(worse) + "\nchanged cases:\n"
                       + _changes(fw, committed, current))


def test_gate_runs_without_errors_within_budget(gate):
    _, _, scored, _, wall = gate
    broken = [(r["name"], r["errors"]) for r in scored["cases"] if r["errors"]]
    assert not broken, f"gate cases that failed to load or check: {broken}"
    assert wall < 240, f"the gate took {wall:.0f} s; keep it near 60 s (drop cases from the gate)"
