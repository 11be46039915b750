"""The benchmark corpus and its committed numbers are well formed (no framework imported)."""

from __future__ import annotations

import ast
import json

import pytest

from _bench import BENCH, load

detect = load("detect")


@pytest.fixture(scope="module")
def cases():
    return detect.load_cases()


def test_corpus_size_and_balance(cases):
    faulty = [c for c in cases if not c.healthy]
    healthy = [c for c in cases if c.healthy]
    assert len(cases) >= 60
    assert len(healthy) * 3 >= len(cases), f"{len(healthy)} healthy of {len(cases)}: below a third"
    for fw in ("torch", "keras"):
        assert sum(c.framework == fw for c in faulty) >= 15
        assert sum(c.framework == fw for c in healthy) >= 10


CATALOGUE = ("ND101", "ND102", "ND103", "ND201", "ND202", "ND203", "ND204", "ND301", "ND302", "ND303", "ND304",
             "ND401", "ND402", "ND403", "ND501", "ND502", "ND503", "ND504")


def test_every_rule_has_two_faulty_cases_per_framework(cases):
    for code in CATALOGUE:
        for fw in ("torch", "keras"):
            n = sum(code in c.raise_ for c in cases if c.framework == fw)
            assert n >= 2, f"{code}: {n} faulty {fw} cases"


def test_cases_document_themselves(cases):
    for c in cases:
        tree = ast.parse(c.path.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{c.name}: no module docstring describing the case"
        assert c.name.startswith(f"{c.framework}_"), f"{c.name}: name must start with its framework"
        assert len(c.source) > 10


def test_gate_subset_covers_both_frameworks_and_healthy_cases(cases):
    gate = [c for c in cases if c.gate]
    for fw in ("torch", "keras"):
        assert any(c.framework == fw and c.healthy for c in gate)
        assert any(c.framework == fw and not c.healthy for c in gate)


def test_committed_results_match_the_corpus(cases):
    data = json.loads((BENCH / "detect_results.json").read_text(encoding="utf-8"))
    assert data["schema"] == detect.SCHEMA
    assert data["full_corpus"] is True
    assert sorted(r["name"] for r in data["cases"]) == sorted(c.name for c in cases), (
        "bench/cases changed since bench/detect_results.json was written: run `python bench/detect.py --json`")
    committed = {r["name"]: r for r in data["cases"]}
    for c in cases:
        row = committed[c.name]
        assert (row["raise"], row["not"], row["allow"], row["seeds"], row["gate"]) == \
            (list(c.raise_), list(c.not_), list(c.allow), c.seeds, c.gate), (
            f"{c.name}: labels changed since the committed run: run `python bench/detect.py --json`")
    for key in ("date", "machine", "versions"):
        assert data[key]


def test_scoring_counts_seeds_as_fractions():
    case = detect.Case("torch_demo", BENCH / "x.py", "torch", ("ND401",), ("ND301",), (), "demo", seeds=4)
    healthy = detect.Case("torch_ok", BENCH / "y.py", "torch", (), (), ("ND502",), "demo", seeds=2)
    ok = {"status": "ok", "autotrainer": {}, "smdebugger": {}}
    records = [
        {**ok, "case": "torch_demo", "seed": 0, "netdoctor": {"ND401": "warning", "ND301": "error"}},
        {**ok, "case": "torch_demo", "seed": 1, "netdoctor": {"ND401": "warning"}},
        {**ok, "case": "torch_demo", "seed": 2, "netdoctor": {"ND103": "info"}},
        {**ok, "case": "torch_demo", "seed": 3, "netdoctor": {}, "autotrainer": {"ND401": "x"}},
        {**ok, "case": "torch_ok", "seed": 0, "netdoctor": {"ND502": "warning", "ND504": "info"}},
        {**ok, "case": "torch_ok", "seed": 1, "netdoctor": {"ND203": "warning"}},
    ]
    scored = detect.score([case, healthy], records)
    nd = scored["per_rule"]["netdoctor"]
    assert nd["ND401"]["tp"] == 0.5 and nd["ND401"]["fn"] == 0.5 and nd["ND401"]["flaky"] == 1
    assert nd["ND301"]["fp"] == 0.25
    assert nd["ND203"]["fp"] == 0.5          # healthy case: every warning code is a negative
    assert nd["ND502"]["negatives"] == 0     # ... except the allowed ones
    s = scored["summary"]["netdoctor"]
    assert s["healthy_cases"] == 1 and s["false_alarm_rate"] == 0.5 and s["error_alarm_rate"] == 0.0
    assert scored["per_rule"]["autotrainer"]["ND401"]["tp"] == 0.25
    assert scored["summary"]["autotrainer"]["false_alarm_rate"] == 0.0


def test_labels_are_validated(tmp_path, monkeypatch):
    bad = tmp_path / "torch_bad.py"
    bad.write_text('"""x"""\nimport torch\nEXPECT = {"raise": ["ND999"], "source": "s"}\n')
    monkeypatch.setattr(detect, "CASES_DIR", tmp_path)
    with pytest.raises(ValueError, match="ND999"):
        detect.load_cases()
    bad.write_text('"""x"""\nimport torch\nEXPECT = {"raise": ["ND301"], "not": ["ND301"], "source": "s"}\n')
    with pytest.raises(ValueError, match="both in raise and not"):
        detect.load_cases()
