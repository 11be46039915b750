"""The verdict of a verified fix: what to measure before and after, and whether the fix worked.

Framework-free. :func:`metrics` gives a finding's key numbers on the original and on the fixed
copy: the count of the rule's findings plus what the rule declares as its metric
(``@rule(..., metric=...)``, a function of the finding and a :class:`Measure`). The rest decides
the verdict: whether the rule still fires where it fired (:func:`persists`), whether the probe
loss got worse (:func:`worse`), whether the minibatch probe's gradient spikes are cut
(:func:`spikes`), and which findings of other rules the fix brought (:func:`new_findings`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from netdoctor.findings import Finding, Report
from netdoctor.snapshot import LayerRecord, ModelSnapshot, Need

if TYPE_CHECKING:
    from netdoctor.verify.run import VerifyOptions

VERIFIED = "verified"
NOT_VERIFIED = "not verified"
NO_FIX = "no automatic fix"
MODEL_WIDE = frozenset({"ND101", "ND102", "ND103", "ND301", "ND302", "ND303", "ND403", "ND502", "ND503", "ND604"})


@dataclass(frozen=True)
class Measure:
    """What a rule's verification metric reads: the snapshot measured (the original or the fixed
    copy) with the original's layer names.

    Attributes:
        original: The snapshot of the user's model.
        snap: The snapshot measured now (``original`` itself, or the fixed copy's).
        rename: Layer names of the original -> the fixed copy's.
    """

    original: ModelSnapshot
    snap: ModelSnapshot
    rename: dict[str, str]

    def rec(self, name: str | None) -> LayerRecord | None:
        """The record of the original's layer ``name`` in the measured snapshot."""
        return self.snap.layer(self.rename.get(name, name)) if name else None

    def grad(self, name: str) -> float | None:
        """The weight-gradient norm of the original's layer ``name`` in the measured snapshot."""
        r = self.rec(name)
        return r.weight.grad.l2 if r is not None and r.weight is not None and r.weight.grad is not None else None

    @property
    def first(self) -> str | None:
        """The original's first executed weight layer."""
        return next((x.name for x in self.original.weight_layers(executed_only=True)), None)

    def original_name(self, name: str | None) -> str | None:
        """A layer name of the measured snapshot, as the original names it."""
        return original_name(name, self.rename)


#: A rule's verification metric: ``(finding, measure) -> {label: value}``.
MetricFunc = Callable[[Finding, Measure], dict[str, Any]]


def metrics(f: Finding, orig: ModelSnapshot, snap: ModelSnapshot, report: Report,
            rename: dict[str, str]) -> dict[str, Any]:
    """The finding's key numbers measured on ``snap`` (the original or the fixed copy).

    The number of the rule's findings in ``report`` (not for history rules: a one-batch check
    never runs them), then the rule's declared metric. Layer names are the original's;
    ``rename`` maps them to the fixed copy's.
    """
    from netdoctor.rules.spec import registry

    spec = registry().get(f.code)
    out: dict[str, Any] = {}
    if spec is None or Need.HISTORY not in spec.needs:
        out[f"{f.code} findings"] = sum(1 for g in report.findings if g.code == f.code)
    if spec is not None and spec.metric is not None:
        out.update(spec.metric(f, Measure(orig, snap, rename)))
    return out


#: Rules whose symptom is that (part of) the model cannot learn: their fix is verified only when the
#: training probe's loss falls, if the original's did not.
NO_LEARNING = frozenset({"ND201", "ND202", "ND301", "ND304"})


def symptom_left(f: Finding, before: dict[str, Any], after: dict[str, Any], base: Any, fixed: Any,
                 o: VerifyOptions) -> list[str]:
    """Why the symptom the finding names is not cured on the fixed copy, or nothing.

    Every gradient norm that was exactly zero (``grad_norm[...]``) must be non-zero afterwards (the
    gradient reaches the layer); for :data:`NO_LEARNING` rules, when the original's training probe
    did not lower its loss, the fixed copy's must.
    """
    out = []
    still = [k[len("grad_norm["):-1] for k, v in before.items()
             if k.startswith("grad_norm[") and v == 0.0 and not (after.get(k) or 0.0) > 0.0]
    if still:
        out.append(f"no gradient reaches {', '.join(f'`{n}`' for n in still)} on the fixed copy either")
    if f.code in NO_LEARNING and base is not None and fixed is not None:
        drop_base, drop_fixed = drop(base), drop(fixed)
        if drop_base is not None and drop_fixed is not None and drop_base < LEARNS and drop_fixed < max(LEARNS, 2 * drop_base):
            out.append(f"the probe loss does not fall on the fixed copy either ({num(fixed.losses[0])} -> "
                       f"{num(fixed.final)} in {len(fixed.losses)} steps, {drop_fixed:.1%}; the original's fell "
                       f"{drop_base:.1%}; learning: {LEARNS:.0%})")
    return out


#: The relative fall of a training probe's loss that counts as learning.
LEARNS = 0.01


def drop(probe: Any) -> float | None:
    """Relative fall of a training probe's loss from its first step to the end (``None``: unknown)."""
    losses, final = getattr(probe, "losses", None), getattr(probe, "final", None)
    if not losses or final is None or not math.isfinite(losses[0]) or not math.isfinite(final) or losses[0] == 0:
        return None
    return (losses[0] - final) / abs(losses[0])


def spikes(before: float | None, after: float | None, factor: float = 10.0) -> list[str]:
    """Why clipping is not verified on the minibatch probe (ND604's spike factor), or nothing."""
    if before is None or before < factor:
        return [(f"the probe did not reproduce the gradient spikes (largest {num(before)}x the running median; "
                 f"spike: {factor:g}x), so clipping could not be tested")]
    if after is not None and after >= factor:
        return [f"gradient spikes remain with clipping ({num(after)}x the running median)"]
    return []


def where(f: Finding) -> str:
    """`` on `layer``` for a finding about one layer, else nothing."""
    return f" on `{f.layer}`" if f.layer and f.code not in MODEL_WIDE else ""


def probe_metrics(probe: Any, final: float | None) -> dict[str, Any]:
    """The training probe's numbers for ``before``/``after``: final loss and largest gradient spike."""
    out: dict[str, Any] = {"probe_loss": final}
    if getattr(probe, "max_spike", None) is not None:
        out["probe_grad_spike"] = probe.max_spike
    return out


def worse(before: float | None, after: float | None, o: VerifyOptions) -> str | None:
    """Why the fixed copy's probe loss is worse, or ``None`` when it is no worse."""
    if before is None or after is None:
        return None
    if not math.isfinite(after):
        return f"the probe loss of the fixed copy is {after}"
    if not math.isfinite(before) or after <= before + max(o.tolerance * abs(before), o.abs_tolerance):
        return None
    return f"the probe loss is worse after the fix ({num(before)} -> {num(after)}; tolerance {o.tolerance:.0%})"


def original_name(name: str | None, rename: dict[str, str]) -> str | None:
    """Map a layer name of the fixed copy back to the original's (``fc1.0`` -> ``fc1``)."""
    if name is None:
        return None
    inverse = {v: k for k, v in rename.items()}
    base, sep, act = name.partition("/")
    return inverse.get(base, base) + sep + act


def scope_of(f: Finding, rename: dict[str, str] | None = None) -> set[str]:
    """The layers a finding is about: its layer and the layers its evidence groups with it."""
    names: list[Any] = [f.layer]
    layers = f.evidence.get("layers")
    if isinstance(layers, dict):
        names += list(layers)
    elif isinstance(layers, (list, tuple)):
        names += [n for n in layers if isinstance(n, str)]
    names += [p[0] for p in f.evidence.get("pairs", ()) if isinstance(p, (list, tuple)) and p]
    return {original_name(n, rename or {}) for n in names if isinstance(n, str)}


def persists(f: Finding, after: Report, rename: dict[str, str]) -> bool:
    """Whether ``f``'s rule still fires where it fired (anywhere, for model-wide rules)."""
    same = [g for g in after.findings if g.code == f.code]
    if f.code in MODEL_WIDE or f.layer is None:
        return bool(same)
    scope = scope_of(f)
    return any(scope & scope_of(g, rename) for g in same)


def new_findings(f: Finding, before: Report, after: Report, rename: dict[str, str]) -> list[str]:
    """Findings of other rules that the fixed copy shows and the original did not."""
    old = {(g.code, g.layer) for g in before.findings}
    out = set()
    for g in after.findings:
        layer = original_name(g.layer, rename)
        if g.code != f.code and (g.code, layer) not in old:
            out.add(f"{g.code} {g.name}" + (f" on `{layer}`" if layer else ""))
    return sorted(out)


def num(x: float | None) -> str:
    """A measurement as rule messages write it (``n/a`` when missing)."""
    from netdoctor.rules.format import fmt

    return fmt(x, 3) if x is not None else "n/a"
