"""Fixtures for the configuration tests: a small fake rule registry (no framework)."""

from __future__ import annotations

from typing import Any

import pytest

from netdoctor.findings import Category, Severity
from netdoctor.rules import spec as _registry
from netdoctor.snapshot import Need


def fake_spec(code: str, name: str, severity: Severity = Severity.WARNING, **options: Any) -> _registry.RuleSpec:
    """A registered-looking rule that yields nothing."""

    def run(snapshot, ctx):  # pragma: no cover - never run here
        return iter(())

    return _registry.RuleSpec(
        code=code, name=name, summary=f"{name} summary", category=Category.from_code(code),
        severity=severity, needs=frozenset({Need.WEIGHTS}), options=dict(options), func=run,
        doc=f"{name} summary\n\nWhat it does: ...",
    )


FAKE_RULES = {
    "ND101": fake_spec("ND101", "unnormalized-inputs", max_scale_ratio=100.0),
    "ND201": fake_spec("ND201", "zero-weights", Severity.ERROR),
    "ND203": fake_spec("ND203", "init-scale", max_ratio=10.0, exempt_layers=()),
    "ND301": fake_spec("ND301", "vanishing-gradients", Severity.ERROR, min_ratio=1e-3, depth=3),
    "ND302": fake_spec("ND302", "exploding-gradients", Severity.ERROR),
    "ND401": fake_spec("ND401", "dead-units", max_dead_fraction=0.5, min_samples=16, strict=False, mode="any"),
}


@pytest.fixture
def fake_rules(monkeypatch: pytest.MonkeyPatch) -> dict[str, _registry.RuleSpec]:
    """Replace the rule registry by :data:`FAKE_RULES` for one test."""
    _registry.registry()  # import the real rule modules first, so they do not register later
    monkeypatch.setattr(_registry, "_REGISTRY", dict(FAKE_RULES))
    return dict(FAKE_RULES)
