from __future__ import annotations

import json

import pytest

from netdoctor.findings import Category, Finding, Report, Severity, TargetInfo


def _f(code: str, sev: Severity, layer: str | None = None) -> Finding:
    return Finding(code=code, name="x", severity=sev, category=Category.from_code(code), message="m", layer=layer)


def test_severity_order_and_parse():
    assert Severity.INFO < Severity.WARNING < Severity.ERROR
    assert Severity.parse("Warning") is Severity.WARNING
    with pytest.raises(ValueError):
        Severity.parse("fatal")


@pytest.mark.parametrize(
    ("severities", "fail_on", "expected"),
    [
        ([], "error", 0),
        ([Severity.WARNING], "error", 0),
        ([Severity.WARNING], "warning", 1),
        ([Severity.INFO], "warning", 0),
        ([Severity.INFO], "info", 1),
        ([Severity.ERROR], "never", 0),
        ([Severity.ERROR], "error", 1),
    ],
)
def test_exit_code(severities, fail_on, expected):
    report = Report(findings=tuple(_f("ND301", s) for s in severities))
    assert report.exit_code(fail_on) == expected


def test_findings_sorted_and_json_roundtrip():
    report = Report(
        findings=(_f("ND401", Severity.WARNING, "fc2"), _f("ND301", Severity.ERROR, "fc1")),
        targets=(TargetInfo(file="m.py", framework="torch", rules_passed=("ND101",)),),
        timings={"total": 0.5},
    )
    assert [f.code for f in report.findings] == ["ND301", "ND401"]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema_version"] == 1
    first = data["findings"][0]
    assert {"file", "rule", "name", "severity", "layer", "message", "recommendation", "evidence"} <= set(first)
    assert first["rule"] == "ND301" and first["severity"] == "error"
    assert report.summary() == "1 error, 1 warning, 1 rules passed in 0.50s"


def test_nonfinite_evidence_is_json_safe():
    f = Finding(code="ND303", name="n", severity=Severity.ERROR, category=Category.GRADIENTS, message="m",
                evidence={"loss": float("nan"), "norm": float("inf")})
    assert json.dumps(f.to_dict())
