"""Verified fixes, run: apply each finding's fix to a copy of the model and measure again.

For every finding with a mechanical fix, the framework's fixer (``netdoctor.adapters.torch.fix``,
``netdoctor.adapters.keras.fix``) applies the fix to a deep copy of the model (or to a copy of the
probe batch, or to the training-probe settings), the adapter measures the copy exactly as it
measured the original, and the same rules run on the new snapshot. A short training probe (a few
dozen optimizer steps on the probe batch, same seed) runs on a copy of the original and on the
fixed copy. The verdict is ``"verified"`` only when the rule no longer fires where it fired, the
symptom the finding names is cured (every layer that got no gradient gets some; for rules whose
symptom is that the model cannot learn, the probe loss falls where the original's did not) and
the probe loss is no worse (within a tolerance); else ``"not verified"`` with the reason. Each
verification carries ``verified: true|false`` right after ``verdict``. Findings that share a cause
(several zero or constant layers, and the ND304 findings they cause) are fixed together: each is
verified with the fix of the whole group, and ``group`` lists its members.
Findings without a mechanical fix get ``"no automatic fix"`` with the reason: every finding of
the report carries a ``verification`` mapping afterwards, none is dropped.

Which fix answers a finding is the rule's own declaration (:func:`~netdoctor.verify.plan.plan_for`),
what to measure before and after too (:func:`~netdoctor.verify.verdict.metrics`). The fixers
guarantee that the user's model and every global RNG are left exactly as they were.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from netdoctor.findings import Finding, Report
from netdoctor.snapshot import ModelSnapshot, ProbeSettings
from netdoctor.verify.plan import FixPlan, describe, plan_for
from netdoctor.verify.protocol import NotApplicable
from netdoctor.verify.verdict import (
    NO_FIX,
    NOT_VERIFIED,
    VERIFIED,
    metrics,
    new_findings,
    num,
    persists,
    probe_metrics,
    spikes,
    symptom_left,
    where,
    worse,
)


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
    from netdoctor.frameworks import get_adapter, get_fixer
    from netdoctor.config import Config
    from netdoctor.engine import selected_rules

    t0 = time.perf_counter()
    if not report.findings:
        return replace(report, timings={**report.timings, "verify": 0.0})
    cfg = config or Config()
    settings = settings or ProbeSettings()
    fixer = get_fixer(snapshot.framework)(model, inputs=inputs, targets=targets, loss_fn=loss_fn,
                                                      settings=settings, input_shape=input_shape)
    specs = selected_rules(cfg, one_shot=True)
    specs += [s for s in _specs_for(report.findings) if s.code not in {x.code for x in specs}]
    session = _Session(fixer, get_adapter(snapshot.framework), snapshot, report, specs, cfg, settings,
                       input_shape, options or VerifyOptions())
    groups = shared_cause_groups(report, snapshot)
    with fixer.guard():
        findings = tuple(f.with_(verification=_verify_safely(f, session, groups.get(i)))
                         for i, f in enumerate(report.findings))
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
    from netdoctor.frameworks import detect_framework, get_adapter
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


def _specs_for(findings: Iterable[Finding]) -> list:
    """Specs of the findings' own rules (so that a rule outside the selection is re-run too)."""
    from netdoctor.rules.spec import registry
    from netdoctor.snapshot import Need

    reg = registry()
    return [reg[c] for c in sorted({f.code for f in findings}) if c in reg and Need.HISTORY not in reg[c].needs]


# -- findings that share a cause ---------------------------------------------------------------
#: Initialization faults: several zero or constant layers block each other's gradients, so only
#: their fixes together can cure any one of them.
SHARED_INIT = frozenset({"ND201", "ND202"})


@dataclass(frozen=True)
class Group:
    """Findings verified together: one combined fix, and how each member is named."""

    plan: FixPlan
    members: tuple[str, ...]


def _label(f: Finding) -> str:
    return f"{f.code} on `{f.layer}`" if f.layer else f.code


def shared_cause_groups(report: Report, snap: ModelSnapshot) -> dict[int, Group]:
    """Finding index -> its group, for findings that share a cause (only groups of two or more).

    All ND201/ND202 findings with a mechanical fix form one group (zero or constant layers block
    each other's gradients); an ND304 finding joins it when its cause names one of those layers
    (``zero-weights:fc2``, ``zero-input:fc2``) or its layers are among them. The group's plan
    applies every member's fix at once.
    """
    init: dict[int, FixPlan] = {}
    for i, f in enumerate(report.findings):
        if f.code in SHARED_INIT:
            plan = plan_for(f, report, snap)
            if isinstance(plan, FixPlan):
                init[i] = plan
    if len(init) < 2:
        return {}
    layers = {report.findings[i].layer for i in init}
    members = list(init)
    for i, f in enumerate(report.findings):
        if f.code != "ND304":
            continue
        cause = str(f.evidence.get("cause") or "")
        blocker = cause.split(":", 1)[1] if ":" in cause else None
        if blocker in layers or layers & set(f.evidence.get("layers") or ()):
            members.append(i)
    steps = tuple(dict.fromkeys(st for i in init for st in init[i].steps))
    group = Group(FixPlan(steps), tuple(_label(report.findings[i]) for i in members))
    return {i: group for i in members}


# -- one finding -----------------------------------------------------------------------------
def _verify_safely(f: Finding, s: _Session, group: Group | None = None) -> dict[str, Any]:
    """:func:`_verify_one`; a crash becomes a "not verified" verdict (re-raised under NETDOCTOR_STRICT=1)."""
    import os

    try:
        return _with_verified(_verify_one(f, s, group))
    except Exception as exc:  # a bug in verification must not cost the user the report
        if os.environ.get("NETDOCTOR_STRICT") == "1":
            raise
        return {"verdict": NOT_VERIFIED, "verified": False,
                "reason": f"verification failed ({type(exc).__name__}: {_line(exc)}); please report this"}


def _with_verified(result: dict[str, Any]) -> dict[str, Any]:
    """``verified: true|false`` right after ``verdict`` (JSON consumers read the boolean)."""
    out: dict[str, Any] = {}
    for k, v in result.items():
        if k == "verified":
            continue
        out[k] = v
        if k == "verdict":
            out["verified"] = v == VERIFIED
    return out


def _verify_one(f: Finding, s: _Session, group: Group | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    plan = group.plan if group is not None else plan_for(f, s.report, s.snapshot)
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
        gone = not persists(f, out.report, out.applied.rename)
        if gone:
            break
        tried.append(describe(cand, s.snapshot))
    result: dict[str, Any] = {"fix": describe(chosen, s.snapshot)}
    if group is not None:
        result["group"] = list(group.members)
    if out.report is None:
        result.update(verdict=NOT_VERIFIED if out.crashed else NO_FIX, reason=out.problem,
                      seconds=round(time.perf_counter() - t0, 4))
        return result
    before = metrics(f, s.snapshot, s.snapshot, s.report, {})
    after = metrics(f, s.snapshot, out.snapshot, out.report, out.applied.rename)
    reasons = [] if gone else [f"{f.code} still fires{where(f)} on the fixed copy"]
    if len(tried) > 1 and not gone:
        reasons[-1] += f" (tried: {'; then '.join(tried)})"
    try:
        base, fixed = s.probes(chosen, out)
        loss_before, loss_after = s.fixer.score(base, fixed, out.applied)
        probe = {"steps": fixed.steps, "optimizer": fixed.optimizer, "loss": fixed.loss_name, "mode": chosen.probe_mode,
                 "seed": s.settings.seed}
        probe.update({k: v for k, v in (("clip_norm", fixed.clip), ("note", fixed.note)) if v is not None})
        before.update(probe_metrics(base, loss_before))
        after.update(probe_metrics(fixed, loss_after))
        if chosen.probe_mode == "minibatch":
            reasons += spikes(base.max_spike, fixed.max_spike)
        loss_worse = worse(loss_before, loss_after, s.options)
        if loss_worse:
            reasons.append(loss_worse)
    except NotApplicable as exc:
        probe, loss_before, loss_after = {"skipped": str(exc)}, None, None
        base = fixed = None
        reasons.append(f"the training probe could not run ({exc})")
    if gone:
        reasons += symptom_left(f, before, after, base, fixed, s.options)
    symptom = "the probe's gradient spikes are cut" if chosen.probe_mode == "minibatch" else \
        f"{f.code} no longer fires{where(f)}"
    if group is not None and len(group.members) > 1:
        symptom += f" (fixed together with {', '.join(m for m in group.members if m != _label(f))}: they share a cause)"
    if reasons:
        verdict, reason = NOT_VERIFIED, "; ".join(reasons)
    else:
        verdict, reason = VERIFIED, (f"{symptom}; probe loss {num(loss_before)} -> {num(loss_after)} after "
                                     f"{probe['steps']} steps")
    for key in [k for k in before if before[k] is None and after.get(k) is None]:
        before.pop(key)
        after.pop(key, None)
    result.update(verdict=verdict, reason=reason, before=before, after=after, probe=probe)
    new = new_findings(f, s.report, out.report, out.applied.rename)
    if new:
        result["new_findings"] = new
    diff = s.fixer.diff(chosen.steps, s.snapshot)
    if diff:
        result["diff"] = diff
    result["seconds"] = round(time.perf_counter() - t0, 4)
    return result


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""
