"""Baselines: stable fingerprints, new-only failures, fixed findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netdoctor.baseline import (
    apply_baseline, fingerprint, fixed_since, normalize_path, read_baseline, write_baseline,
)
from netdoctor.errors import ConfigError
from netdoctor.findings import Category, Finding, LoadError, Report, Severity, SkippedRule, TargetInfo


def f(code: str, layer: str | None, file: str | None = "models/net.py", sev: Severity = Severity.ERROR,
      **evidence: float) -> Finding:
    return Finding(code, {"ND201": "zero-weights", "ND301": "vanishing-gradients", "ND401": "dead-units"}.get(code, "x"),
                   sev, Category.from_code(code), f"{code} measured {evidence}", layer=layer,
                   evidence=evidence, file=file)


def target(file: str | None, passed: tuple[str, ...] = (), skipped: tuple[str, ...] = ()) -> TargetInfo:
    return TargetInfo(file=file, framework="torch", rules_passed=passed,
                      skipped=tuple(SkippedRule(c, "x", "no data") for c in skipped))


RULES = ("ND201", "ND301", "ND401")


def test_fingerprint_ignores_numbers_and_wording_but_not_identity() -> None:
    a = f("ND401", "fc1", dead_frac=0.62)
    b = f("ND401", "fc1", dead_frac=0.64).with_(message="other words", severity=Severity.WARNING)
    assert fingerprint(a) == fingerprint(b) == fingerprint(a.to_dict())
    assert fingerprint(a) == fingerprint(a.with_(file="./models/net.py"))
    assert fingerprint(a) != fingerprint(a.with_(layer="fc2"))
    assert fingerprint(a) != fingerprint(a.with_(code="ND402"))
    assert fingerprint(a) != fingerprint(a.with_(file="models/other.py"))
    assert fingerprint(f("ND301", None)) != fingerprint(f("ND301", "x"))


def test_normalize_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_path(tmp_path / "models" / "net.py") == "models/net.py"
    assert normalize_path("./models/net.py") == "models/net.py"
    assert normalize_path(None) is None


def test_write_then_apply_keeps_only_new_findings(tmp_path: Path) -> None:
    old = Report(findings=(f("ND201", "head"), f("ND401", "fc1", dead_frac=0.6)),
                 targets=(target("models/net.py"),), rules_run=RULES)
    path = tmp_path / "baseline.json"
    write_baseline(old, path)
    doc = json.loads(path.read_text())
    assert doc["netdoctor_baseline"] == 1 and len(doc["findings"]) == 2
    assert {e["rule"] for e in doc["findings"]} == {"ND201", "ND401"}
    assert all("dead_frac" not in json.dumps(e["fingerprint"]) for e in doc["findings"])

    # remeasured (different numbers) + one new finding
    new = Report(findings=(f("ND201", "head"), f("ND401", "fc1", dead_frac=0.66), f("ND301", "fc0")),
                 targets=(target("models/net.py"),), rules_run=RULES)
    applied = apply_baseline(new, path)
    assert [x.code for x in applied.findings] == ["ND301"]
    assert sorted(x.code for x in applied.suppressed) == ["ND201", "ND401"]
    assert all(x.evidence["suppressed_because"] == "in baseline" for x in applied.suppressed)
    assert applied.exit_code("error") == 1
    assert fixed_since(new, path) == [] == fixed_since(applied, path)

    # only the baselined findings: passes
    same = Report(findings=old.findings, targets=old.targets, rules_run=RULES)
    assert apply_baseline(same, path).exit_code("info") == 0


def test_fixed_findings_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_baseline(Report(findings=(f("ND201", "head"), f("ND401", "fc1"), f("ND401", "x", file="models/b.py"))),
                   path)
    now = Report(findings=(f("ND401", "fc1"),), targets=(target("models/net.py", passed=("ND201",)),),
                 rules_run=RULES)
    fixed = fixed_since(now, path)
    assert [e.describe() for e in fixed] == ["ND201 zero-weights at head in models/net.py"]
    assert fixed == fixed_since(apply_baseline(now, path), path)


def test_unchecked_files_skipped_rules_and_load_errors_are_not_fixed(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_baseline(Report(findings=(f("ND201", "head"), f("ND301", "fc0"), f("ND201", "w", file="models/b.py"),
                                    f("ND201", "w", file="models/c.py"))), path)
    now = Report(
        targets=(target("models/net.py", passed=("ND201",), skipped=("ND301",)),),  # c.py and b.py not checked
        rules_run=RULES,
        errors=(LoadError("models/b.py", "SyntaxError"),),
    )
    assert [e.rule for e in fixed_since(now, path)] == ["ND201"]


def test_duplicate_fingerprints_are_a_multiset(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    write_baseline(Report(findings=(f("ND301", None),)), path)
    now = Report(findings=(f("ND301", None), f("ND301", None, gain=3.0)), rules_run=RULES,
                 targets=(target("models/net.py"),))
    applied = apply_baseline(now, path)
    assert len(applied.findings) == 1 and len(applied.suppressed) == 1


def test_missing_or_foreign_baseline_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--write-baseline"):
        apply_baseline(Report(), tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"findings": []}')
    with pytest.raises(ConfigError, match="not a netdoctor baseline"):
        read_baseline(bad)
    bad.write_text("not json")
    with pytest.raises(ConfigError, match="not a netdoctor baseline"):
        read_baseline(bad)
