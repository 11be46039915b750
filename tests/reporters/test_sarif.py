"""SARIF 2.1.0 output validates against the official schema and carries what code scanning needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from netdoctor.baseline import fingerprint
from netdoctor.findings import Category, Finding, LoadError, Report, Severity, SkippedRule, TargetInfo
from netdoctor.reporters import sarif
from netdoctor.rules import spec as _registry
from netdoctor.snapshot import Need

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PLACES = (REPO.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json",
                 Path(__file__).with_name("sarif-schema-2.1.0.json"))

MODEL_PY = '''import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)
'''


def spec(code: str, name: str, severity: Severity, doc: str, **options: Any) -> _registry.RuleSpec:
    return _registry.RuleSpec(code, name, doc.splitlines()[0], Category.from_code(code), severity,
                              frozenset({Need.GRADIENTS}), options, lambda s, c: iter(()), doc)


@pytest.fixture
def rules(monkeypatch: pytest.MonkeyPatch) -> None:
    _registry.registry()
    monkeypatch.setattr(_registry, "_REGISTRY", {
        "ND201": spec("ND201", "zero-weights", Severity.ERROR, "A weight matrix is all zeros.\n\n## Why is this bad?\nNo gradient."),
        "ND301": spec("ND301", "vanishing-gradients", Severity.ERROR,
                      "Gradients vanish before the first layers.\n\nWhat it does: ...", min_ratio=1e-3),
        "ND401": spec("ND401", "dead-units", Severity.WARNING, "ReLU units never fire."),
        "ND504": spec("ND504", "bias-before-batchnorm", Severity.INFO, "Bias before BatchNorm."),
    })


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    place = next((p for p in SCHEMA_PLACES if p.is_file()), None)
    assert place is not None, f"SARIF schema not found in {SCHEMA_PLACES}"
    schema = json.loads(place.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def make_report(tmp_path: Path) -> Report:
    model = tmp_path / "models" / "net model.py"
    model.parent.mkdir()
    model.write_text(MODEL_PY)
    file = "models/net model.py"
    findings = (
        Finding("ND301", "vanishing-gradients", Severity.ERROR, Category.GRADIENTS,
                "gradient norm of `body` is 1e-09 (limit 1e-04)", layer="body",
                recommendation="Use He initialization.", snippet="nn.init.kaiming_normal_(m.weight)",
                evidence={"grad_norm": 1e-9, "bad": float("nan")}, file=file),
        Finding("ND401", "dead-units", Severity.WARNING, Category.ACTIVATIONS, "62% dead", layer="head.0/relu",
                file=file),
        Finding("ND301", "vanishing-gradients", Severity.INFO, Category.GRADIENTS, "model-wide", file=file),
        Finding("ND504", "bias-before-batchnorm", Severity.INFO, Category.STRUCTURE, "library call"),
    )
    suppressed = (
        Finding("ND201", "zero-weights", Severity.ERROR, Category.WEIGHTS, "head is zero", layer="head",
                evidence={"suppressed_because": "zero-init head"}, file=file),
        Finding("ND201", "zero-weights", Severity.ERROR, Category.WEIGHTS, "old", layer="body",
                evidence={"suppressed_because": "in baseline"}, file=file),
    )
    target = TargetInfo(file=file, framework="torch", skipped=(SkippedRule("ND101", "unnormalized-inputs", "no data"),))
    return Report(findings=findings, suppressed=suppressed, targets=(target,),
                  rules_run=("ND201", "ND301", "ND401", "ND504"),
                  errors=(LoadError("models/broken.py", "SyntaxError: invalid syntax (line 3)"),))


def test_sarif_validates_and_describes_rules_and_results(tmp_path: Path, rules: None, validator,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = make_report(tmp_path)
    text = sarif.render(report)
    doc = json.loads(text)
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, [e.message for e in errors]
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "netdoctor" and driver["version"] and driver["informationUri"].startswith("https://")
    rules_by_id = {r["id"]: r for r in driver["rules"]}
    assert list(rules_by_id) == ["ND201", "ND301", "ND401", "ND504"]
    nd301 = rules_by_id["ND301"]
    assert nd301["name"] == "vanishing-gradients"
    assert nd301["fullDescription"]["text"].startswith("Gradients vanish") and "What it does" in nd301["fullDescription"]["text"]
    assert "[tool.netdoctor.options.ND301]" in nd301["help"]["markdown"] and "min_ratio" in nd301["help"]["markdown"]
    assert {r: d["defaultConfiguration"]["level"] for r, d in rules_by_id.items()} == {
        "ND201": "error", "ND301": "error", "ND401": "warning", "ND504": "note"}

    results = run["results"]
    assert len(results) == 6
    first = results[0]
    assert first["ruleId"] == "ND301" and driver["rules"][first["ruleIndex"]]["id"] == "ND301"
    assert first["level"] == "error"
    assert first["message"]["text"].startswith("gradient norm of `body`") and "He initialization" in first["message"]["text"]
    phys = first["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"] == {"uri": "models/net%20model.py", "uriBaseId": "PROJECTROOT"}
    assert run["originalUriBaseIds"] == {"PROJECTROOT": {"uri": tmp_path.resolve().as_uri() + "/"}}
    assert phys["region"]["startLine"] == 6  # self.body = ...
    assert first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "body"
    assert first["partialFingerprints"] == {sarif.FINGERPRINT_KEY: fingerprint(report.findings[0])}
    assert first["properties"]["evidence"]["bad"] == "nan"
    by_layer = {r["locations"][0].get("logicalLocations", [{}])[0].get("fullyQualifiedName") if r["locations"] else "none": r
                for r in results}
    assert by_layer["head.0/relu"]["locations"][0]["physicalLocation"]["region"]["startLine"] == 7  # self.head
    assert by_layer["head.0/relu"]["level"] == "warning"
    assert by_layer["none"]["level"] == "note" and by_layer["none"]["locations"] == []  # library call: no file
    supp = [r for r in results if "suppressions" in r]
    assert [(s["suppressions"][0]["kind"], s["suppressions"][0]["justification"]) for s in supp] == [
        ("inSource", "zero-init head"), ("external", "in baseline")]

    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is False
    notes = inv["toolExecutionNotifications"]
    assert notes[0]["level"] == "error" and "SyntaxError" in notes[0]["message"]["text"]
    assert notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/broken.py"
    assert notes[1]["descriptor"] == {"id": "ND101"} and "no data" in notes[1]["message"]["text"]


def test_empty_report_is_valid_sarif(validator) -> None:
    doc = json.loads(sarif.render(Report()))
    assert not list(validator.iter_errors(doc))
    assert doc["runs"][0]["results"] == [] and doc["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_unregistered_rule_and_absolute_path_outside_root(tmp_path: Path, validator) -> None:
    f = Finding("ND999", "future-rule", Severity.WARNING, Category.TRAINING, "m", file="/elsewhere/m.py")
    doc = json.loads(sarif.render(Report(findings=(f,)), root=tmp_path))
    assert not list(validator.iter_errors(doc))
    rule = doc["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["id"] == "ND999" and rule["name"] == "future-rule" and rule["defaultConfiguration"]["level"] == "warning"
    loc = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "file:///elsewhere/m.py"} and loc["region"]["startLine"] == 1


def test_reporter_registry_finds_sarif() -> None:
    from netdoctor import reporters

    assert reporters.render("sarif", Report()).startswith("{")


def test_uris_are_relative_to_the_project_root_from_a_subfolder(tmp_path: Path, validator,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.netdoctor]\nfail-on = 'warning'\n")
    models = tmp_path / "models"
    models.mkdir()
    (models / "legacy_model.py").write_text(MODEL_PY)
    monkeypatch.chdir(models)
    located = Finding("ND201", "zero-weights", Severity.ERROR, Category.WEIGHTS, "zero", layer="dense_1",
                      file="legacy_model.py", line=5)  # a line the loader located wins over the name scan
    guessed = Finding("ND301", "vanishing-gradients", Severity.ERROR, Category.GRADIENTS, "small", layer="head",
                      file="legacy_model.py")
    doc = json.loads(sarif.render(Report(findings=(located, guessed), errors=(LoadError("../other.py", "boom"),))))
    assert not list(validator.iter_errors(doc))
    run = doc["runs"][0]
    assert run["originalUriBaseIds"] == {"PROJECTROOT": {"uri": tmp_path.resolve().as_uri() + "/"}}
    phys = [r["locations"][0]["physicalLocation"] for r in run["results"]]
    assert [p["artifactLocation"] for p in phys] == [{"uri": "models/legacy_model.py", "uriBaseId": "PROJECTROOT"}] * 2
    assert [p["region"]["startLine"] for p in phys] == [5, 7]
    note = run["invocations"][0]["toolExecutionNotifications"][0]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "other.py", "uriBaseId": "PROJECTROOT"}
    # an explicit root (the CLI passes the folder of --config) is used as given
    doc = json.loads(sarif.render(Report(findings=(located,)), root=models))
    loc = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc == {"uri": "legacy_model.py", "uriBaseId": "PROJECTROOT"}
