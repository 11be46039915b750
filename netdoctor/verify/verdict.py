"""The verdict of a verified fix: what to measure before and after, and whether the fix worked.

Part of :mod:`netdoctor.verify` (framework-free): :func:`metrics` (the finding's key numbers on
the original and on the fixed copy), the :class:`ProbeResult` a fixer's training probe returns,
whether the rule still fires where it fired
(:func:`_persists`), whether the probe loss got worse (:func:`_worse`) and the gradient-spike
check of the minibatch probe (:func:`_spikes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netdoctor.verify.plan import _var_ratio
from netdoctor.findings import Finding, Report
from netdoctor.snapshot import ModelSnapshot

if TYPE_CHECKING:
    from netdoctor.verify import VerifyOptions

VERIFIED = "verified"
NOT_VERIFIED = "not verified"
NO_FIX = "no automatic fix"
MODEL_WIDE = frozenset({"ND101", "ND102", "ND103", "ND301", "ND302", "ND303", "ND403", "ND502", "ND503", "ND604"})


def _spikes(before: float | None, after: float | None, factor: float = 10.0) -> list[str]:
    """Why clipping is not verified on the minibatch probe (ND604's spike factor), or nothing."""
    if before is None or before < factor:
        return [(f"the probe did not reproduce the gradient spikes (largest {_num(before)}x the running median; "
                 f"spike: {factor:g}x), so clipping could not be tested")]
    if after is not None and after >= factor:
        return [f"gradient spikes remain with clipping ({_num(after)}x the running median)"]
    return []


def _where(f: Finding) -> str:
    return f" on `{f.layer}`" if f.layer and f.code not in MODEL_WIDE else ""


def _probe_metrics(probe: Any, final: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"probe_loss": final}
    if getattr(probe, "max_spike", None) is not None:
        out["probe_grad_spike"] = probe.max_spike
    return out


def _worse(before: float | None, after: float | None, o: VerifyOptions) -> str | None:
    """Why the fixed copy's probe loss is worse, or ``None`` when it is no worse."""
    if before is None or after is None:
        return None
    if not math.isfinite(after):
        return f"the probe loss of the fixed copy is {after}"
    if not math.isfinite(before) or after <= before + max(o.tolerance * abs(before), o.abs_tolerance):
        return None
    return f"the probe loss is worse after the fix ({_num(before)} -> {_num(after)}; tolerance {o.tolerance:.0%})"


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


def _persists(f: Finding, after: Report, rename: dict[str, str]) -> bool:
    """Whether ``f``'s rule still fires where it fired (anywhere, for model-wide rules)."""
    same = [g for g in after.findings if g.code == f.code]
    if f.code in MODEL_WIDE or f.layer is None:
        return bool(same)
    scope = scope_of(f)
    return any(scope & scope_of(g, rename) for g in same)


def _new_findings(f: Finding, before: Report, after: Report, rename: dict[str, str]) -> list[str]:
    """Findings of other rules that the fixed copy shows and the original did not."""
    old = {(g.code, g.layer) for g in before.findings}
    out = set()
    for g in after.findings:
        layer = original_name(g.layer, rename)
        if g.code != f.code and (g.code, layer) not in old:
            out.add(f"{g.code} {g.name}" + (f" on `{layer}`" if layer else ""))
    return sorted(out)


def _num(x: float | None) -> str:
    from netdoctor.rules._util import fmt

    return fmt(x, 3) if x is not None else "n/a"


# -- what to measure before and after ----------------------------------------------------------
def metrics(f: Finding, orig: ModelSnapshot, snap: ModelSnapshot, report: Report,
            rename: dict[str, str]) -> dict[str, Any]:
    """The finding's key numbers measured on ``snap`` (the original or the fixed copy).

    Layer names are the original's; ``rename`` maps them to the fixed copy's.
    """
    import numpy as np

    from netdoctor.analysis.gradflow import gradient_chain

    def rec(name: str | None) -> Any:
        return snap.layer(rename.get(name, name)) if name else None

    def grad(name: str) -> float | None:
        r = rec(name)
        return r.weight.grad.l2 if r is not None and r.weight is not None and r.weight.grad is not None else None

    out: dict[str, Any] = {}
    if f.code != "ND604":  # a history rule: a one-batch check never runs it
        out[f"{f.code} findings"] = sum(1 for g in report.findings if g.code == f.code)
    ev, code, r = f.evidence, f.code, rec(f.layer)
    first = next((x.name for x in orig.weight_layers(executed_only=True)), None)
    if code == "ND101" and r is not None and r.input is not None:
        st = r.input
        if st.unit_mean is not None and st.unit_std is not None:
            rms = np.sqrt(np.asarray(st.unit_mean, float) ** 2 + np.asarray(st.unit_std, float) ** 2)
            out[f"max_feature_rms[{f.layer}]"] = float(np.nanmax(rms)) if rms.size else None
        out[f"input_abs_max[{f.layer}]"] = st.abs_max
    elif code in ("ND201", "ND202", "ND204") and r is not None:
        p = next((q for q in r.params if q.name == ev.get("param")), r.weight)
        if code == "ND201" and p is not None:
            out[f"max_abs_weight[{f.layer}]"] = p.stats.abs_max
        elif code == "ND202" and p is not None:
            out[f"duplicate_units[{f.layer}]"] = 1.0 if p.stats.std == 0 else (p.duplicate_unit_frac or 0.0)
        elif code == "ND204":
            out[f"nonfinite_frac[{f.layer}]"] = max((q.stats.frac_nonfinite for q in r.params), default=0.0)
        if first:
            out[f"grad_norm[{first}]"] = grad(first)
    elif code == "ND203":
        for name in list(ev.get("layers") or [f.layer])[:4]:
            if rec(name) is not None:
                out[f"variance/reference[{name}]"] = _var_ratio(rec(name))
    elif code in ("ND301", "ND302"):
        chain = gradient_chain(snap)
        rel = {original_name(c.name, rename): c.rel for c in chain}
        if code == "ND301":
            out[f"relative_grad[{first}]"] = rel.get(first, 0.0)
            out["first/last relative_grad"] = (chain[0].rel / chain[-1].rel) if len(chain) > 1 else None
        else:
            out["max relative_grad"] = max(rel.values(), default=None)
            out["global grad_norm"] = math.sqrt(sum(c.grad ** 2 for c in chain))
    elif code in ("ND102", "ND303"):
        out["probe-batch loss"] = snap.loss.value if snap.loss is not None else None
    elif code == "ND304":
        for name in list(ev.get("layers") or [f.layer])[:4]:
            out[f"grad_norm[{name}]"] = grad(name)
    elif code in ("ND401", "ND402") and r is not None:
        vec, key = (r.unit_active, "dead_frac") if code == "ND401" else (r.unit_saturated, "saturated_frac")
        if vec is not None and len(vec):
            v = np.asarray(vec, dtype=float)
            out[f"{key}[{f.layer}]"] = float(np.mean(v <= 0.0) if code == "ND401" else np.mean(v > 0.5))
    elif code == "ND403":
        rms = [rec(n).output.rms for n in ev.get("rms", {}) if rec(n) is not None and rec(n).output is not None]
        if len(rms) >= 2 and rms[0] > 0:
            out["activation rms last/first"] = rms[-1] / rms[0]
    elif code == "ND502":
        out["longest plain run"] = _longest_plain_run(snap)
    elif code == "ND503" and snap.output is not None:
        loss = snap.loss
        out["output/loss"] = (f"{snap.output.final_activation or 'linear'} into "
                              f"{loss.name if loss else '?'} (expects {loss.expects if loss else '?'})")
        head = snap.output_layer
        if head is not None and head.weight is not None and head.weight.grad is not None:
            out["head grad_norm"] = head.weight.grad.l2
    return out


def _longest_plain_run(snap: ModelSnapshot) -> int:
    from netdoctor.snapshot import KIND_CONV, KIND_LINEAR

    best = cur = 0
    for r in snap.layers:
        if r.is_norm:
            cur = 0
        elif r.kind in (KIND_LINEAR, KIND_CONV) and r.executed:
            cur += 1
            best = max(best, cur)
    return best
