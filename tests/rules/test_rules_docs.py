"""The catalogue contract: ND101-ND504 exist with their fixed names, and each docstring documents itself."""

from __future__ import annotations

import re

import pytest

from netdoctor.findings import Severity
from netdoctor.rules import registry

CATALOGUE = {
    "ND101": ("unnormalized-inputs", Severity.WARNING), "ND102": ("nonfinite-inputs", Severity.ERROR),
    "ND103": ("constant-feature", Severity.INFO), "ND201": ("zero-weights", Severity.ERROR),
    "ND202": ("symmetric-weights", Severity.ERROR), "ND203": ("init-scale", Severity.WARNING),
    "ND204": ("nonfinite-weights", Severity.ERROR), "ND301": ("vanishing-gradients", Severity.ERROR),
    "ND302": ("exploding-gradients", Severity.ERROR), "ND303": ("nonfinite-gradients", Severity.ERROR),
    "ND304": ("no-gradient", Severity.WARNING), "ND401": ("dead-units", Severity.WARNING),
    "ND402": ("saturated-activations", Severity.WARNING), "ND403": ("signal-drift", Severity.WARNING),
    "ND501": ("batchnorm-with-dropout", Severity.WARNING), "ND502": ("deep-without-normalization", Severity.WARNING),
    "ND503": ("output-loss-mismatch", Severity.ERROR), "ND504": ("bias-before-batchnorm", Severity.INFO),
}
SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Options", "## References")


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_rule_is_declared_as_catalogued_and_documented(code: str) -> None:
    spec = registry()[code]
    name, severity = CATALOGUE[code]
    assert (spec.name, spec.severity) == (name, severity)
    assert spec.summary and not spec.summary.startswith("#") and spec.summary.endswith(".")
    positions = [spec.doc.find(s) for s in SECTIONS]
    assert all(p > 0 for p in positions) and positions == sorted(positions), code
    for option, default in spec.options.items():
        found = re.search(rf"``{option}`` \(default ([^)]+)\)", spec.doc)
        assert found and float(found.group(1)) == default, f"{code}: option {option} (default {default}) undocumented"
