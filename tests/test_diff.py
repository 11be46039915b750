"""``netdoctor diff``: new/resolved findings and per-layer metric regressions."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netdoctor.diff import diff_reports, main
from netdoctor.findings import Category, Finding, LoadError, Report, Severity, TargetInfo


def finding(code: str, layer: str | None, sev: Severity = Severity.ERROR, file: str = "m.py", **ev: float) -> Finding:
    return Finding(code, "x", sev, Category.from_code(code), f"{code} {ev}", layer=layer, file=file, evidence=ev)


def report(findings=(), layers=(), errors=(), files=("m.py",)) -> dict[str, Any]:
    targets = tuple(TargetInfo(file=f, framework="torch", layers=tuple(layers) if f == files[0] else ())
                    for f in files)
    return Report(findings=tuple(findings), targets=targets, rules_run=("ND301",),
                  errors=tuple(errors)).to_dict()


ROWS = [
    {"layer": "fc1", "grad_norm": 1e-2, "dead_frac": 0.1},
    {"layer": "fc2", "grad_norm": 1e-3, "saturated_frac": 0.0},
    {"layer": "fc3", "grad_norm": 5e-3},
]


def test_identical_reports_do_not_regress() -> None:
    old = report([finding("ND401", "fc1", Severity.WARNING, dead_frac=0.6)], ROWS)
    new = report([finding("ND401", "fc1", Severity.WARNING, dead_frac=0.64)], ROWS)  # remeasured
    res = diff_reports(old, new)
    assert not res.regressed and res.unchanged == 1 and not res.new_findings and not res.resolved_findings


def test_new_and_resolved_findings_and_escalation() -> None:
    old = report([finding("ND401", "fc1", Severity.WARNING), finding("ND201", "head")], ROWS)
    new = report([finding("ND401", "fc1", Severity.ERROR), finding("ND301", "fc0")], ROWS)
    res = diff_reports(old, new)
    assert [f["rule"] for f in res.new_findings] == ["ND301"]
    assert [f["rule"] for f in res.resolved_findings] == ["ND201"]
    assert [(o["severity"], n["severity"]) for o, n in res.escalated] == [("warning", "error")]
    assert res.regressed


def test_only_resolved_findings_is_no_regression() -> None:
    res = diff_reports(report([finding("ND201", "head")], ROWS), report([], ROWS))
    assert not res.regressed and len(res.resolved_findings) == 1


def test_first_layer_gradient_dropping_tenfold_is_a_regression() -> None:
    rows = [dict(ROWS[0], grad_norm=9e-4), ROWS[1], dict(ROWS[2], grad_norm=4e-3)]  # 11x drop; 1.25x drop
    res = diff_reports(report([], ROWS), report([], rows))
    assert [(c.layer, c.metric) for c in res.regressions] == [("fc1", "grad_norm")]
    assert "dropped 11.1x lower" in res.regressions[0].describe()
    assert res.regressed
    # a smaller drop (5x) is noise-tolerated; a custom factor catches it
    rows5 = [dict(ROWS[0], grad_norm=2e-3), *ROWS[1:]]
    assert not diff_reports(report([], ROWS), report([], rows5)).regressed
    assert diff_reports(report([], ROWS), report([], rows5), grad_factor=4).regressed


def test_gradient_rise_is_an_improvement_and_nonfinite_a_regression() -> None:
    rows = [dict(ROWS[0], grad_norm=1.0), dict(ROWS[1], grad_norm=float("nan")), ROWS[2]]
    res = diff_reports(report([], ROWS), report([], rows))
    assert [(c.layer, c.regression) for c in res.metric_changes] == [("fc1", False), ("fc2", True)]
    assert res.regressions[0].description == "became non-finite"


def test_dead_and_saturated_fractions() -> None:
    rows = [dict(ROWS[0], dead_frac=0.45), dict(ROWS[1], saturated_frac=0.1), ROWS[2]]
    res = diff_reports(report([], ROWS), report([], rows))
    assert [(c.layer, c.metric) for c in res.regressions] == [("fc1", "dead_frac")]
    better = diff_reports(report([], rows), report([], ROWS))
    assert not better.regressed and [c.metric for c in better.improvements] == ["dead_frac"]


def test_files_not_checked_in_new_report_are_not_resolved_and_new_load_errors_regress() -> None:
    old = report([finding("ND201", "w", file="b.py")], files=("m.py", "b.py"))
    new = report([], files=("m.py",), errors=[LoadError("b.py", "SyntaxError")])
    res = diff_reports(old, new)
    assert res.resolved_findings == [] and [e["file"] for e in res.new_errors] == ["b.py"] and res.regressed
    back = diff_reports(new, old)
    assert [e["file"] for e in back.fixed_errors] == ["b.py"]


def write(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_main_prints_and_returns_exit_codes(tmp_path: Path) -> None:
    old = write(tmp_path, "old.json", report([finding("ND201", "head")], ROWS))
    new = write(tmp_path, "new.json", report([finding("ND301", "fc1")], [dict(ROWS[0], grad_norm=1e-4), *ROWS[1:]]))
    out = io.StringIO()
    assert main(old, new, stream=out) == 1
    text = out.getvalue()
    assert "New findings (1)" in text and "ND301" in text
    assert "Resolved findings (1)" in text and "ND201" in text
    assert "Metric regressions (1)" in text and "fc1 grad_norm: 0.01 -> 0.0001 (dropped 100x lower)" in text
    assert text.rstrip().splitlines()[-1].startswith("netdoctor diff: regressed")
    out = io.StringIO()
    assert main(old, old, stream=out) == 0 and "no regression" in out.getvalue()
    colored = io.StringIO()
    assert main(old, new, stream=colored, color=True) == 1 and "\x1b[" in colored.getvalue()


def test_main_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.json", report())
    assert main(tmp_path / "missing.json", good) == 2
    assert "no such report" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(good, bad) == 2
    sarifish = write(tmp_path, "s.json", {"version": "2.1.0", "runs": []})
    assert main(good, sarifish) == 2
    assert "not a netdoctor JSON report" in capsys.readouterr().err


def test_module_entry_point(tmp_path: Path) -> None:
    old = write(tmp_path, "old.json", report())
    proc = subprocess.run([sys.executable, "-m", "netdoctor.diff", str(old), str(old)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "no regression" in proc.stdout
