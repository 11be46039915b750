"""The JSON reporter: strict JSON with schema_version and the documented finding fields."""

from __future__ import annotations

import json

import pytest

from netdoctor.findings import SCHEMA_VERSION, Category, Finding, LoadError, Report, Severity, TargetInfo
from netdoctor.reporters import get, render

FIELDS = {"file", "rule", "name", "severity", "category", "layer", "message", "recommendation",
          "snippet", "evidence", "step"}


def test_fields_and_schema_version():
    import numpy as np

    f = Finding("ND301", "vanishing-gradients", Severity.ERROR, Category.GRADIENTS,
                "grad norm of fc1 is 1e-9 (limit 1e-6)", layer="fc1", recommendation="Use He init.",
                evidence={"grad_norm": np.float32(1e-9), "ratio": float("nan"), "big": float("inf"),
                          "per_layer": np.array([1.0, 2.0])}, file="m.py")
    t = TargetInfo("m.py", "torch", "2.13.0", "MLP", 10, 4,
                   layers=({"layer": "fc1", "grad_norm": float("-inf")},))
    report = Report(findings=(f,), targets=(t,), rules_run=("ND301",), errors=(LoadError("x.py", "boom"),),
                    timings={"total": 0.5})
    text = render("json", report)
    assert text.endswith("\n")
    data = json.loads(text)  # strict: json.loads would accept NaN, so check the text too
    assert "NaN" not in text and "Infinity" not in text
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["tool"]["name"] == "netdoctor"
    (fd,) = data["findings"]
    assert FIELDS <= set(fd)
    assert fd["rule"] == "ND301" and fd["severity"] == "error" and fd["layer"] == "fc1" and fd["file"] == "m.py"
    assert fd["evidence"]["grad_norm"] == pytest.approx(1e-9)
    assert fd["evidence"]["ratio"] == "nan" and fd["evidence"]["big"] == "inf"
    assert fd["evidence"]["per_layer"] == [1.0, 2.0]
    assert data["targets"][0]["layers"][0]["grad_norm"] == "-inf"
    assert data["errors"] == [{"file": "x.py", "message": "boom"}]
    assert data["summary"]["errors"] == 1 and data["summary"]["load_errors"] == 1


def test_compact_and_unknown_format():
    assert "\n" not in render("json", Report(), indent=None).rstrip("\n")
    with pytest.raises(ValueError, match="unknown format 'yaml'; available: .*json.*text"):
        get("yaml")
