"""Run the history rules (ND6xx) on a training history, live or replayed from a log.

The monitor (:mod:`netdoctor.monitor.core`) and the log replay (:mod:`netdoctor.monitor.log`)
both come here: the history is wrapped in a :class:`~netdoctor.snapshot.ModelSnapshot` and the
same engine as ``netdoctor.check`` runs the rules on it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from netdoctor.config import Config
from netdoctor.engine import run_rules, selected_rules
from netdoctor.findings import Report, SkippedRule
import numpy as np

from netdoctor.history import History, Sample
from netdoctor.snapshot import ROLE_WEIGHT, LayerRecord, LossInfo, ModelSnapshot, Need, ParamRecord, TensorStats

#: Rules that read gradient norms; skipped (with the reason) when none were measured.
GRADIENT_RULES = ("ND604", "ND608", "ND609")
#: Rules that read the dead/saturated fractions of activation layers.
ACTIVATION_RULES = ("ND607", "ND610")
#: Rules that read update-to-weight ratios.
UPDATE_RULES = ("ND605",)

NO_GRADIENT = ("no gradient was seen on any sampled step (None or all zero): call monitor.step() after "
               "loss.backward() and before optimizer.zero_grad()")
NO_ACTIVATIONS = "no activation layer (ReLU family, sigmoid/tanh) was measured"
NO_UPDATES = "update-to-weight ratios were not measured"


def coverage(history: History) -> dict[str, str]:
    """Rules with no data to judge, mapped to the reason (they are reported as skipped, never passed).

    Judged on the samples: gradient rules need a sample with a gradient norm, activation rules
    a sample with a measured fraction, ND605 a sample with update ratios. Before the first
    sample nothing is skipped (there is nothing to pass either).
    """
    samples = history.samples
    if not samples:
        return {}
    out: dict[str, str] = {}
    if history.grad_source is None or all(s.grad_norm is None for s in samples):
        why = next((n for n in history.notes if "gradient" in n), NO_GRADIENT if history.grad_source else
                   "gradient norms were not measured")
        out.update(dict.fromkeys(GRADIENT_RULES, why))

    def measured(s: Sample) -> bool:
        return any(a is not None and bool(np.isfinite(a).any()) for a in (s.act_dead, s.act_saturated))

    if not any(measured(s) for s in samples):
        why = next((n for n in history.notes if "activation" in n), NO_ACTIVATIONS)
        out.update(dict.fromkeys(ACTIVATION_RULES, why))
    if all(s.layer_update is None for s in samples):
        out.update(dict.fromkeys(UPDATE_RULES, next((n for n in history.notes if "update" in n), NO_UPDATES)))
    return out


def history_specs(config: Config) -> list:
    """Selected rules that can run on a history alone (the ND6xx family)."""
    return [s for s in selected_rules(config) if s.needs <= {Need.HISTORY}]


def snapshot_of(history: History, meta: dict[str, Any]) -> ModelSnapshot:
    """A :class:`ModelSnapshot` carrying ``history``; weight layers come from the last sample."""
    layers: list[LayerRecord] = []
    last = next((s for s in reversed(history.usable_samples) if s.layer_weight is not None), None)
    if last is not None:
        for i, (name, kind) in enumerate(zip(history.layers, history.layer_kinds)):
            grad = None
            if last.layer_grad is not None:
                grad = TensorStats(shape=(), l2=float(last.layer_grad[i]))
            w = ParamRecord("weight", ROLE_WEIGHT, TensorStats(shape=(), l2=float(last.layer_weight[i])), grad=grad)
            layers.append(LayerRecord(name=name, type_name=kind, kind=kind, params=(w,)))
    return ModelSnapshot(
        framework=meta.get("framework", history.framework),
        framework_version=str(meta.get("framework_version", "")),
        model_class=str(meta.get("model_class", "")),
        layers=tuple(layers),
        collected=frozenset({Need.HISTORY}),
        param_count=int(meta.get("param_count", 0)),
        trainable_param_count=int(meta.get("trainable_param_count", 0)),
        suppressions=meta.get("suppressions", {}),
        loss=LossInfo(name="training loss (every step)", expects="any", value=float(history.loss_values[-1])
                      if history.loss_values.size else float("nan")),
        history=history,
        notes=tuple(history.notes)
        + (f"monitored {history.steps} steps, sampled every {history.every} ({len(history.samples)} samples kept)",),
    )


def evaluate(history: History, meta: dict[str, Any], config: Config, specs: list | None = None) -> Report:
    """Run the history rules on ``history`` and return the report."""
    t0 = time.perf_counter()
    specs = history_specs(config) if specs is None else specs
    missing = coverage(history)  # no data for a rule: say so instead of passing silently
    unmet = [SkippedRule(s.code, s.name, missing[s.code]) for s in specs if s.code in missing]
    specs = [s for s in specs if s.code not in missing]
    report = run_rules(snapshot_of(history, meta), specs, config)
    if unmet and report.targets:
        target = report.targets[0]
        report = replace(report, targets=(replace(target, skipped=tuple(target.skipped) + tuple(unmet)),))
    return replace(report, timings={"rules": time.perf_counter() - t0}, history=history)
