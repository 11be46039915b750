"""Verified fixes: apply each finding's recommended fix to a copy of the model and measure again.

For every finding with a mechanical fix, the framework's fixer (``adapters/_torch_fix.py``,
``adapters/_keras_fix.py``) applies the fix to a deep copy of the model (or to a copy of the
probe batch, or to the training-probe settings), the adapter measures the copy exactly as it
measured the original, and the same rules run on the new snapshot. A short training probe (a few
dozen optimizer steps on the probe batch, same seed) runs on a copy of the original and on the
fixed copy. The verdict is ``"verified"`` only when the rule no longer fires where it fired and
the probe loss is no worse (within a tolerance); else ``"not verified"`` with the reason.
Findings without a mechanical fix get ``"no automatic fix"`` with the reason: every finding of
the report carries a ``verification`` mapping afterwards, none is dropped.

Fixes (the framework's snippet is in ``diff``, in the user's layer names):

* ND201, ND202, ND203, ND304 (zero weights downstream), ND403: re-initialize with He/Glorot/LeCun
  matched to the activation (ND403 falls back to normalization layers);
* ND301: re-initialize the too-small layers, or insert BatchNorm before each saturating
  activation, as the finding recommends; ND502: insert BatchNorm/LayerNorm after each hidden layer;
* ND302: standardize the inputs (when ND101 fired) and re-initialize over-scaled layers, then clip
  at the recommended norm in the probe; ND604: clip, judged on a minibatch probe;
* ND101, ND402 (entry layer): standardize the inputs; ND102, ND303 (NaN inputs): drop those rows;
* ND204, ND303 (NaN weights): re-initialize the layer; ND401: zero the negative biases;
* ND501: move the Dropout after the BatchNorm (else remove it); ND504: remove the bias;
* ND503: remove the final Softmax/Sigmoid module, or switch the loss to its logits/probability form.

This module is framework-free: it decides which fix answers which finding (:func:`plan_for`),
what to measure before and after (:func:`metrics`), and the verdict. The fixers guarantee that
the user's model and every global RNG are left exactly as they were.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from netdoctor.findings import Finding, Report
from netdoctor.snapshot import ModelSnapshot, ProbeSettings

VERIFIED = "verified"
NOT_VERIFIED = "not verified"
NO_FIX = "no automatic fix"
MODEL_WIDE = frozenset({"ND101", "ND102", "ND103", "ND301", "ND302", "ND303", "ND403", "ND502", "ND503", "ND604"})


@dataclass(frozen=True)
class VerifyOptions:
    """Knobs of the verification.

    Attributes:
        steps: Optimizer steps of each training probe.
        tolerance: Relative slack on the probe loss: "no worse" means
            ``after <= before + max(tolerance * |before|, abs_tolerance)``.
        abs_tolerance: Absolute slack on the probe loss.
        minibatch: Batch size of the minibatch probe used for gradient spikes (ND604).
    """

    steps: int = 30
    tolerance: float = 0.05
    abs_tolerance: float = 1e-4
    minibatch: int = 16


@dataclass(frozen=True)
class FixStep:
    """One framework-neutral edit: ``op`` on ``layer`` with hashable ``args``."""

    op: str
    layer: str | None = None
    args: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.args).get(key, default)


def step(op: str, layer: str | None = None, **kwargs: Any) -> FixStep:
    """Build a :class:`FixStep` (keyword values must be hashable)."""
    return FixStep(op, layer, tuple(sorted(kwargs.items())))


@dataclass(frozen=True)
class FixPlan:
    """The fix for one finding: edits, fallbacks tried when the symptom stays, probe kind."""

    steps: tuple[FixStep, ...]
    fallbacks: tuple[FixPlan, ...] = ()
    probe_mode: str = "full"  # "full": full-batch steps; "minibatch": shuffled minibatches (spikes)


class NotApplicable(Exception):
    """The fix cannot be applied mechanically to this model (raised by the fixers)."""


@dataclass
class _Outcome:
    applied: Any = None
    snapshot: ModelSnapshot | None = None
    report: Report | None = None
    problem: str | None = None
    crashed: bool = False
    probe: Any = None


@dataclass
class _Session:
    fixer: Any
    adapter: Any
    snapshot: ModelSnapshot
    report: Report
    specs: list
    config: Any
    settings: ProbeSettings
    input_shape: Any
    options: VerifyOptions
    outcomes: dict = field(default_factory=dict)
    base: dict = field(default_factory=dict)

    def evaluate(self, plan: FixPlan) -> _Outcome:
        """Apply ``plan`` to a copy, measure it, run the rules (cached per plan)."""
        from netdoctor.engine import merged_needs, run_rules

        if plan.steps in self.outcomes:
            return self.outcomes[plan.steps]
        out = _Outcome()
        try:
            out.applied = self.fixer.apply(plan.steps, self.snapshot)
            out.snapshot = self.adapter.collect(
                out.applied.model, inputs=out.applied.inputs, targets=out.applied.targets,
                loss_fn=out.applied.loss_fn, needs=merged_needs(self.specs), settings=self.settings,
                input_shape=self.input_shape)
            out.report = run_rules(out.snapshot, self.specs, self.config)
        except NotApplicable as exc:
            out.problem = str(exc)
        except Exception as exc:  # noqa: BLE001 - a fix that crashes is reported, never hidden
            out.problem, out.crashed = f"applying the fix failed ({type(exc).__name__}: {_line(exc)})", True
        self.outcomes[plan.steps] = out
        return out

    def probes(self, plan: FixPlan, out: _Outcome) -> tuple[Any, Any]:
        o = self.options
        if plan.probe_mode not in self.base:
            self.base[plan.probe_mode] = self.fixer.probe(None, o.steps, plan.probe_mode, o.minibatch)
        if out.probe is None:
            out.probe = self.fixer.probe(out.applied, o.steps, plan.probe_mode, o.minibatch)
        return self.base[plan.probe_mode], out.probe


# -- entry points ----------------------------------------------------------------------------
def verify_report(report: Report, snapshot: ModelSnapshot, *, model: Any, inputs: Any = None, targets: Any = None,
                  loss_fn: Any = None, config: Any = None, settings: ProbeSettings | None = None,
                  input_shape: Any = None, options: VerifyOptions | None = None) -> Report:
    """Fill ``verification`` on every finding of ``report`` (made from ``snapshot`` of ``model``).

    Args:
        report: The report of one model.
        snapshot: The snapshot the report was made from.
        model: The user's model; never modified.
        inputs: The probe inputs as given (``None``: synthetic).
        targets: The probe targets.
        loss_fn: The user's loss, if given.
        config: The configuration of the check.
        settings: The probe settings of the check.
        input_shape: Shape of one sample for synthetic inputs.
        options: Verification knobs.

    Returns:
        The report with each finding's ``verification`` set and ``timings["verify"]`` added.
    """
    from netdoctor._frameworks import get_adapter
    from netdoctor.config import Config
    from netdoctor.engine import selected_rules

    t0 = time.perf_counter()
    if not report.findings:
        return replace(report, timings={**report.timings, "verify": 0.0})
    cfg = config or Config()
    settings = settings or ProbeSettings()
    fixer = _fixer_module(snapshot.framework).Fixer(model, inputs=inputs, targets=targets, loss_fn=loss_fn,
                                                      settings=settings, input_shape=input_shape)
    specs = selected_rules(cfg, one_shot=True)
    specs += [s for s in _specs_for(report.findings) if s.code not in {x.code for x in specs}]
    session = _Session(fixer, get_adapter(snapshot.framework), snapshot, report, specs, cfg, settings,
                       input_shape, options or VerifyOptions())
    with fixer.guard():
        findings = tuple(f.with_(verification=_verify_safely(f, session)) for f in report.findings)
    timings = {**report.timings, "verify": time.perf_counter() - t0}
    if "total" in report.timings:
        timings["total"] = report.timings["total"] + timings["verify"]
    return replace(report, findings=findings, timings=timings)


def verify_findings(findings: Iterable[Finding], model: Any, inputs: Any = None, targets: Any = None, *,
                    loss_fn: Any = None, config: Any = None, settings: ProbeSettings | None = None,
                    input_shape: Any = None, options: VerifyOptions | None = None) -> list[Finding]:
    """Verify findings that did not come from ``check`` (e.g. the monitor's ND604 gradient spikes).

    Measures ``model`` once on the probe batch, then verifies each finding like
    :func:`verify_report`. Returns the findings with ``verification`` filled.
    """
    from netdoctor._frameworks import detect_framework, get_adapter
    from netdoctor.config import Config
    from netdoctor.engine import merged_needs, selected_rules

    cfg = config or Config()
    settings = settings or ProbeSettings()
    snap = get_adapter(detect_framework(model)).collect(
        model, inputs=inputs, targets=targets, loss_fn=loss_fn, needs=merged_needs(selected_rules(cfg, one_shot=True)),
        settings=settings, input_shape=input_shape)
    out = verify_report(Report(findings=tuple(findings)), snap, model=model, inputs=inputs, targets=targets,
                        loss_fn=loss_fn, config=cfg, settings=settings, input_shape=input_shape, options=options)
    return list(out.findings)


def _fixer_module(framework: str) -> Any:
    if framework == "torch":
        from netdoctor.adapters import _torch_fix as mod
    else:
        from netdoctor.adapters import _keras_fix as mod
    return mod


def _specs_for(findings: Iterable[Finding]) -> list:
    """Specs of the findings' own rules (so that a rule outside the selection is re-run too)."""
    from netdoctor.rules._registry import registry
    from netdoctor.snapshot import Need

    reg = registry()
    return [reg[c] for c in sorted({f.code for f in findings}) if c in reg and Need.HISTORY not in reg[c].needs]


# -- one finding -----------------------------------------------------------------------------
def _verify_safely(f: Finding, s: _Session) -> dict[str, Any]:
    """:func:`_verify_one`; a crash becomes a "not verified" verdict (re-raised under NETDOCTOR_STRICT=1)."""
    import os

    try:
        return _verify_one(f, s)
    except Exception as exc:  # a bug in verification must not cost the user the report
        if os.environ.get("NETDOCTOR_STRICT") == "1":
            raise
        return {"verdict": NOT_VERIFIED, "reason": f"verification failed ({type(exc).__name__}: {_line(exc)}); "
                "please report this"}


def _verify_one(f: Finding, s: _Session) -> dict[str, Any]:
    t0 = time.perf_counter()
    plan = plan_for(f, s.report, s.snapshot)
    if isinstance(plan, str):
        return {"verdict": NO_FIX, "reason": plan, "seconds": round(time.perf_counter() - t0, 4)}
    out, chosen, gone, tried = _Outcome(), plan, False, []
    candidates = (plan, *plan.fallbacks)
    for i, cand in enumerate(candidates):
        out, chosen = s.evaluate(cand), cand
        if out.report is None and not out.crashed and i + 1 < len(candidates):
            continue  # not applicable to this model: try the next way to fix it
        if out.report is None:
            break
        gone = not _persists(f, out.report, out.applied.rename)
        if gone:
            break
        tried.append(describe(cand, s.snapshot))
    result: dict[str, Any] = {"fix": describe(chosen, s.snapshot)}
    if out.report is None:
        result.update(verdict=NOT_VERIFIED if out.crashed else NO_FIX, reason=out.problem,
                      seconds=round(time.perf_counter() - t0, 4))
        return result
    before = metrics(f, s.snapshot, s.snapshot, s.report, {})
    after = metrics(f, s.snapshot, out.snapshot, out.report, out.applied.rename)
    reasons = [] if gone else [f"{f.code} still fires{_where(f)} on the fixed copy"]
    if len(tried) > 1 and not gone:
        reasons[-1] += f" (tried: {'; then '.join(tried)})"
    try:
        base, fixed = s.probes(chosen, out)
        loss_before, loss_after = s.fixer.score(base, fixed, out.applied)
        probe = {"steps": fixed.steps, "optimizer": fixed.optimizer, "loss": fixed.loss_name, "mode": chosen.probe_mode,
                 "seed": s.settings.seed}
        probe.update({k: v for k, v in (("clip_norm", fixed.clip), ("note", fixed.note)) if v is not None})
        before.update(_probe_metrics(base, loss_before))
        after.update(_probe_metrics(fixed, loss_after))
        if chosen.probe_mode == "minibatch":
            reasons += _spikes(base.max_spike, fixed.max_spike)
        worse = _worse(loss_before, loss_after, s.options)
        if worse:
            reasons.append(worse)
    except NotApplicable as exc:
        probe, loss_before, loss_after = {"skipped": str(exc)}, None, None
        reasons.append(f"the training probe could not run ({exc})")
    symptom = "the probe's gradient spikes are cut" if chosen.probe_mode == "minibatch" else \
        f"{f.code} no longer fires{_where(f)}"
    if reasons:
        verdict, reason = NOT_VERIFIED, "; ".join(reasons)
    else:
        verdict, reason = VERIFIED, (f"{symptom}; probe loss {_num(loss_before)} -> {_num(loss_after)} after "
                                     f"{probe['steps']} steps")
    for key in [k for k in before if before[k] is None and after.get(k) is None]:
        before.pop(key)
        after.pop(key, None)
    result.update(verdict=verdict, reason=reason, before=before, after=after, probe=probe)
    new = _new_findings(f, s.report, out.report, out.applied.rename)
    if new:
        result["new_findings"] = new
    diff = s.fixer.diff(chosen.steps, s.snapshot)
    if diff:
        result["diff"] = diff
    result["seconds"] = round(time.perf_counter() - t0, 4)
    return result


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


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def _num(x: float | None) -> str:
    from netdoctor.rules._util import fmt

    return fmt(x, 3) if x is not None else "n/a"


# -- which fix for which finding ---------------------------------------------------------------
_NO_FIX = {
    "ND103": "dropping a constant feature changes the model's input width; drop it in the data pipeline",
    "ND604": "no recommended clipping norm in the finding",
}


def plan_for(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    """The mechanical fix for ``f``, or the reason there is none."""
    handler = _PLANS.get(f.code)
    if handler is None:
        return _NO_FIX.get(f.code, "netdoctor has no mechanical fix for this rule; apply the recommendation by hand")
    return handler(f, report, snap)


def _init_for(rec: Any, param: Any) -> str:
    """Initializer key for a parameter: he:relu, he:leaky_relu, lecun, glorot, glorot:tanh, orthogonal, normal."""
    from netdoctor.rules._util import init_reference
    from netdoctor.snapshot import KIND_EMBEDDING, ROLE_EMBEDDING, ROLE_RECURRENT

    if param is not None and param.role == ROLE_RECURRENT:
        return "orthogonal"
    if rec.kind == KIND_EMBEDDING or (param is not None and param.role == ROLE_EMBEDDING):
        return "normal"
    act = (rec.activation or "").lower()
    name = init_reference(rec.activation)[0]
    if name == "He":
        return "he:leaky_relu" if act == "leaky_relu" else "he:relu"
    return "lecun" if name == "LeCun" else ("glorot:tanh" if act == "tanh" else "glorot")


def _reinit(snap: ModelSnapshot, name: str, param: str | None = None) -> FixStep:
    from netdoctor.snapshot import ROLE_WEIGHT

    rec = snap.layer(name)
    if rec is None:
        raise KeyError(name)
    p = next((q for q in rec.params if q.name == param), None) if param else None
    p = p or rec.param(ROLE_WEIGHT) or rec.weight
    return step("reinit", name, param=p.name if p else "weight", init=_init_for(rec, p))


def _norm_step(snap: ModelSnapshot, name: str) -> FixStep:
    rec = snap.layer(name)
    rank = len(rec.output.shape) if rec is not None and rec.output is not None else 2
    return step("insert_norm", name, rank=rank, activation=(rec.activation if rec else None))


def _plain_hidden(snap: ModelSnapshot, names: Iterable[str]) -> list[str]:
    """Dense/conv layers among ``names`` that are not the head and not already normalized."""
    from netdoctor.rules._util import is_head, norm_after
    from netdoctor.snapshot import KIND_CONV, KIND_LINEAR

    out = []
    for n in names:
        rec = snap.layer(n)
        if rec is not None and rec.kind in (KIND_LINEAR, KIND_CONV) and not is_head(snap, rec) \
                and norm_after(snap, rec) is None:
            out.append(n)
    return out


def _var_ratio(rec: Any) -> float | None:
    from netdoctor.rules._util import init_reference

    p = rec.weight
    if p is None or not p.fan_in or not p.fan_out:
        return None
    name = init_reference(rec.activation)[0]
    canon = 2.0 / p.fan_in if name == "He" else 1.0 / p.fan_in if name == "LeCun" else 2.0 / (p.fan_in + p.fan_out)
    return (p.stats.mean ** 2 + p.stats.std ** 2) / canon


def _plan_weights(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    if f.code == "ND204":
        return FixPlan((step("reset_nonfinite", f.layer),))
    if f.code == "ND203":
        names = list(f.evidence.get("layers") or [f.layer])
        return FixPlan(tuple(_reinit(snap, n) for n in names))
    return FixPlan((_reinit(snap, f.layer, f.evidence.get("param")),))


def _plan_vanishing(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    import re

    from netdoctor.rules._gradflow import gradient_chain
    from netdoctor.rules._util import init_reference

    rec_txt = f.recommendation or ""
    named = re.match(r"Initialize `([^`]+)` randomly", rec_txt)
    if named:
        return FixPlan((_reinit(snap, named.group(1)),))
    hidden = [r.rec for r in gradient_chain(snap)[:-1]]
    if rec_txt.startswith("Initialize the hidden layers"):
        small = [r for r in hidden if r.weight is not None and r.weight.fan_in and r.weight.stats.mean ** 2
                 + r.weight.stats.std ** 2 < init_reference(r.activation)[3] / r.weight.fan_in / 10]
        return FixPlan(tuple(_reinit(snap, r.name) for r in small or hidden))
    names = _plain_hidden(snap, [r.name for r in hidden])
    if not names:
        return "every hidden layer is already normalized; the cause is elsewhere"
    return FixPlan(tuple(_norm_step(snap, n) for n in names))


def _plan_exploding(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    from netdoctor.rules._gradflow import gradient_chain

    steps = [step("standardize")] if any(g.code == "ND101" for g in report.findings) else []
    large = [n for g in report.findings if g.code == "ND203" and g.evidence.get("direction") == "large"
             for n in (g.evidence.get("layers") or [g.layer])]
    if not large and not steps:
        large = [r.name for r in gradient_chain(snap) if (_var_ratio(r.rec) or 0.0) > 3.0]
    steps += [_reinit(snap, n) for n in dict.fromkeys(large)]
    steps.append(step("clip", max_norm=float(f.evidence.get("max_norm") or 1.0)))
    return FixPlan(tuple(steps))


def _plan_drift(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    names = [n for n in f.evidence.get("rms", {}) if snap.layer(n) is not None] or [f.layer]
    norm = _plain_hidden(snap, names)
    return FixPlan(tuple(_reinit(snap, n) for n in names),
                   fallbacks=(FixPlan(tuple(_norm_step(snap, n) for n in norm)),) if norm else ())


def _plan_data(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    if f.code in ("ND101", "ND102"):
        return FixPlan((step("standardize" if f.code == "ND101" else "drop_rows"),))
    origin = f.evidence.get("origin")  # ND303
    if origin is None and any(g.code == "ND102" for g in report.findings):
        return FixPlan((step("drop_rows"),))
    rec = snap.layer(origin) if origin else None
    if rec is not None and any(p.stats.frac_nonfinite > 0 for p in rec.params):
        return FixPlan((step("reset_nonfinite", origin),))
    return ("the first NaN/Inf is produced by a computation inside the model (" + str(f.evidence.get("origin"))
            + "); change that computation by hand")


def _plan_no_gradient(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    cause = str(f.evidence.get("cause", ""))
    kind, _, name = cause.partition(":")
    rec = snap.layer(name) if name else None
    if kind in ("zero-weights", "zero-head", "zero-input") and rec is not None and rec.weight is not None \
            and rec.weight.stats.abs_max == 0.0:
        return FixPlan((_reinit(snap, name),))
    dead = next((g for g in report.findings if g.code == "ND401" and g.layer == name), None)
    if kind in ("dead", "zero-input") and dead is not None:
        return plan_for(dead, report, snap)  # revive the dead layer the way ND401 recommends
    return f"the cause ({kind or 'unknown'}) is in the model's code or data flow; fix it by hand"


def _plan_units(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    import re

    from netdoctor.rules._util import producer_weight_layer

    rec_txt = f.recommendation or ""
    named = re.match(r"Reset the negative biases of `([^`]+)`", rec_txt)
    if named:
        return FixPlan((step("zero_bias", named.group(1)),))
    if f.code == "ND402" and rec_txt.startswith("Standardize the inputs"):
        return FixPlan((step("standardize"),))
    rec = snap.layer(f.layer) if f.layer else None
    prod = producer_weight_layer(snap, rec) if rec is not None else None
    if f.code == "ND402" and prod is not None and f.severity > f.severity.INFO:
        return FixPlan((_reinit(snap, prod.name), _norm_step(snap, prod.name)))
    return "the recommended change (activation, learning rate or output) needs a decision by hand"


def _plan_structure(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    from netdoctor.snapshot import KIND_ACTIVATION

    if f.code == "ND504":
        names = [p[0] for p in f.evidence.get("pairs", ())] or [f.layer]
        return FixPlan(tuple(step("no_bias", n) for n in names))
    if f.code == "ND502":
        names = _plain_hidden(snap, f.evidence.get("layers", ()))
        return FixPlan(tuple(_norm_step(snap, n) for n in names)) if names else "no plain hidden layer to normalize"
    drop, bn = f.evidence.get("dropout") or f.layer, f.evidence.get("batchnorm")
    after = snap.successor(bn) if bn else None
    target = after.name if after is not None and after.kind == KIND_ACTIVATION and "/" not in after.name else bn
    remove = FixPlan((step("remove", drop),))
    return FixPlan((step("move_dropout", drop, after=target),), fallbacks=(remove,)) if target else remove


def _plan_output(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    ev, out, loss = f.evidence, snap.output, snap.loss
    act, units = ev.get("final_activation"), int(ev.get("units") or 1)
    if out is None or loss is None:
        return "the output or the loss was not measured"
    if act == "softmax" and units == 1:
        return "a one-unit softmax needs a new head and loss (one sigmoid unit with binary cross-entropy)"
    expects = "logits" if loss.from_logits is True else ev.get("expects") or loss.expects
    if loss.from_logits is False and "crossentropy" in loss.name.lower().replace("_", ""):
        expects = "probabilities"
    final = out.final_layer
    module = final is not None and "/" not in final and snap.framework == "torch"
    keras = snap.framework == "keras"
    if expects == "logits" and act in ("softmax", "sigmoid"):
        if keras:
            return FixPlan((step("loss_form", form="probabilities"),))
        by_loss = FixPlan((step("loss_form", form="probabilities"),))
        if module:  # a functional softmax in forward() cannot be removed: switch the loss instead
            return FixPlan((step("remove", final, transform="log" if act == "softmax" else "logit"),), (by_loss,))
        return by_loss
    if expects == "probabilities" and act == "sigmoid" and units > 1:
        return FixPlan((step("set_activation", (final or "").split("/")[0], activation="softmax"),))
    if expects == "probabilities":
        return FixPlan((step("loss_form", form="logits", units=units),))
    if expects == "log_probabilities":
        if act == "softmax" and module:
            return FixPlan((step("set_activation", final, activation="log_softmax", transform="log"),))
        return FixPlan((step("loss_form", form="logits", units=units),))
    return "this output/loss pairing has no mechanical fix"


def _plan_spikes(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    norm = f.evidence.get("max_norm")
    if not norm:
        return _NO_FIX["ND604"]
    return FixPlan((step("clip", max_norm=float(norm)),), probe_mode="minibatch")


_PLANS = {
    "ND101": _plan_data, "ND102": _plan_data, "ND303": _plan_data,
    "ND201": _plan_weights, "ND202": _plan_weights, "ND203": _plan_weights, "ND204": _plan_weights,
    "ND301": _plan_vanishing, "ND302": _plan_exploding, "ND304": _plan_no_gradient,
    "ND401": _plan_units, "ND402": _plan_units, "ND403": _plan_drift,
    "ND501": _plan_structure, "ND502": _plan_structure, "ND503": _plan_output, "ND504": _plan_structure,
    "ND604": _plan_spikes,
}


# -- what the fix does, in words ---------------------------------------------------------------
_INIT_NAMES = {"he:relu": "He normal (ReLU)", "he:leaky_relu": "He normal (leaky ReLU)", "lecun": "LeCun normal",
               "glorot": "Glorot uniform", "glorot:tanh": "Glorot uniform (tanh gain)", "orthogonal": "orthogonal",
               "normal": "N(0, 1)"}


def describe(plan: FixPlan, snap: ModelSnapshot) -> str:
    """One line saying what the fix changes, naming the user's layers."""
    from netdoctor.rules._util import name_list

    def typed(name: str | None) -> str:
        rec = snap.layer(name) if name else None
        return f"`{name}` ({rec.type_name})" if rec is not None else f"`{name}`"

    parts: list[str] = []
    groups: dict[tuple, list[str]] = {}
    for s in plan.steps:
        if s.op == "reinit":
            groups.setdefault(("reinit", s.get("init")), []).append(s.layer or "")
        elif s.op in ("insert_norm", "no_bias", "zero_bias", "reset_nonfinite"):
            groups.setdefault((s.op,), []).append(s.layer or "")
    for key, names in groups.items():
        text = {"reinit": "re-initialize {} with " + _INIT_NAMES.get(str(key[-1]), str(key[-1])),
                "insert_norm": "insert a normalization layer after {} (before its activation)",
                "no_bias": "remove the bias of {}", "zero_bias": "reset the bias of {} to zero",
                "reset_nonfinite": "re-initialize {} (NaN/Inf parameters)"}[key[0]]
        parts.append(text.format(name_list(names)))
    for s in plan.steps:
        if s.op == "standardize":
            parts.insert(0, "standardize the inputs with the probe batch's per-feature mean and std")
        elif s.op == "drop_rows":
            parts.insert(0, "drop the samples that contain NaN/Inf")
        elif s.op == "clip":
            parts.append(f"clip the global gradient norm at {s.get('max_norm'):g} in the training probe")
        elif s.op == "remove":
            parts.append(f"remove {typed(s.layer)}")
        elif s.op == "move_dropout":
            parts.append(f"move {typed(s.layer)} after {typed(s.get('after'))}")
        elif s.op == "set_activation":
            parts.append(f"make {typed(s.layer)} a {s.get('activation')}")
        elif s.op == "loss_form":
            loss = snap.loss.name if snap.loss else "the loss"
            parts.append(f"switch {loss} to the form that takes {s.get('form')}")
    return "; ".join(parts)


# -- what to measure before and after ----------------------------------------------------------
def metrics(f: Finding, orig: ModelSnapshot, snap: ModelSnapshot, report: Report,
            rename: dict[str, str]) -> dict[str, Any]:
    """The finding's key numbers measured on ``snap`` (the original or the fixed copy).

    Layer names are the original's; ``rename`` maps them to the fixed copy's.
    """
    import numpy as np

    from netdoctor.rules._gradflow import gradient_chain

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


def join_blocks(blocks: list[tuple[str, list[str]]], limit: int = 4) -> str:
    """Join the fixers' per-step diff blocks: identical blocks once, at most ``limit`` blocks per edit kind."""
    out: list[str] = []
    seen: set[tuple[str, ...]] = set()
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for op, lines in blocks:
        key = tuple(lines)
        if not lines or key in seen:
            continue
        seen.add(key)
        if shown.get(op, 0) >= limit:
            hidden[op] = hidden.get(op, 0) + 1
            continue
        shown[op] = shown.get(op, 0) + 1
        out.extend(lines)
    out += [f"# ... and {n} more layer{'s' if n > 1 else ''} the same way" for n in hidden.values()]
    return "\n".join(out)
