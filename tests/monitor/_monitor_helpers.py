"""Helpers of the monitor tests: hand-built histories and single-rule runs."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from netdoctor.findings import Finding
from netdoctor.history import History, HistoryRecorder, Sample
from netdoctor.rules import registry
from netdoctor.rules.spec import RuleContext
from netdoctor.snapshot import ModelSnapshot, Need


def make_history(losses: Iterable[float] = (), samples: Iterable[Sample] = (), *, every: int = 1,
                 layers: tuple[str, ...] = ("fc1", "fc2"), layer_kinds: tuple[str, ...] | None = None,
                 act_layers: tuple[str, ...] = (), act_kinds: tuple[str, ...] = (),
                 grad_source: str | None = "backward") -> History:
    """A :class:`History` from per-step losses (starting at step 0) and samples."""
    rec = HistoryRecorder(every)
    rec.meta = {"layers": list(layers), "layer_kinds": list(layer_kinds or ["linear"] * len(layers)),
                "act_layers": list(act_layers), "act_kinds": list(act_kinds), "grad_source": grad_source}
    rec.add_losses(0, np.asarray(list(losses), dtype=float))
    for s in samples:
        rec.add_sample(s)
    return rec.view()


def run_rule(code: str, history: History, framework: str = "torch", **options: Any) -> list[Finding]:
    """Run one rule on a history, with option overrides."""
    spec = registry()[code]
    ctx = RuleContext(spec=spec, severity=spec.severity, options={**spec.options, **options}, framework=framework)
    snap = ModelSnapshot(framework=framework, collected=frozenset({Need.HISTORY}), history=history)
    return spec.run(snap, ctx)


def noisy_decay(n: int, start: float = 2.3, end: float = 0.05, tau: float = 80.0, noise: float = 0.08,
                seed: int = 0) -> np.ndarray:
    """A healthy minibatch loss curve: exponential decay with multiplicative batch noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (end + (start - end) * np.exp(-t / tau)) * np.exp(noise * rng.standard_normal(n))
