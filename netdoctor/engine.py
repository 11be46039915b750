"""The engine: select rules, merge their needs, run them on a finished snapshot.

Pure: no framework and no adapter is involved here; :func:`netdoctor.api.check` asks the
adapter for the merged needs and hands the snapshot to :func:`run_rules`.
"""

from __future__ import annotations

import os
import time
from typing import Iterable, Mapping

from netdoctor import suppress
from netdoctor.config import Config
from netdoctor.findings import Finding, Report, SkippedRule, TargetInfo
from netdoctor.rules.spec import RuleContext, RuleSpec, registry
from netdoctor.analysis.health import layer_health
from netdoctor.snapshot import ModelSnapshot, Need


def selected_rules(config: Config, *, one_shot: bool = False, fit_probe: bool = False) -> list[RuleSpec]:
    """Rules enabled by ``config``, in code order.

    With ``one_shot=True`` (a pre-flight ``check`` of one probe batch), rules that need a
    training history are left out: they are not applicable without a monitored run,
    so listing them as "skipped" on every check would only be noise. Rules that need the
    opt-in fit probe (:data:`Need.FIT`) run only with ``fit_probe=True``, for the same reason.
    """
    specs = tuple(registry().values())
    key = (tuple(map(id, specs)), tuple(config.select), tuple(config.ignore), one_shot, fit_probe)
    got = _SELECTED.get(key)
    if got is None:
        got = tuple(
            spec
            for spec in specs
            if config.is_selected(spec.code, spec.name) and not (one_shot and Need.HISTORY in spec.needs)
            and (fit_probe or Need.FIT not in spec.needs)
        )
        if len(_SELECTED) >= 64:
            _SELECTED.clear()
        _SELECTED[key] = got  # the specs in the value keep their ids in the key valid
    return list(got)


#: :func:`selected_rules` by (the registered specs, select, ignore, one_shot, fit_probe): every check asks
_SELECTED: dict[tuple, tuple[RuleSpec, ...]] = {}


def merged_needs(specs: Iterable[RuleSpec]) -> frozenset[Need]:
    """Union of the needs of ``specs`` (what the adapter must collect, once)."""
    out: set[Need] = set()
    for s in specs:
        out |= s.needs
    return frozenset(out)


def run_rules(snapshot: ModelSnapshot, specs: Iterable[RuleSpec], config: Config | None = None,
              file: str | None = None, *, notes: tuple[str, ...] = (),
              timings: Mapping[str, float] | None = None) -> Report:
    """Run ``specs`` on a finished snapshot (pure: no framework involved) and build the report.

    Rules whose needs the snapshot lacks are reported as skipped with the adapter's reason.
    Findings on layers marked with ``netdoctor.allow`` or matched by a per-layer ignore are
    moved to ``Report.suppressed``.

    Args:
        snapshot: What the adapter collected.
        specs: The rules to run.
        config: Severities, options and per-layer ignores (default: ``Config()``).
        file: The model file, stamped on the findings and the target.
        notes: Remarks put before the snapshot's own notes in the target.
        timings: Phases timed before (e.g. ``load``, ``collect``). When given, the report's
            timings are these plus ``rules`` and their ``total``; else the report has none.
    """
    t0 = time.perf_counter()
    cfg = config or Config()
    findings: list[Finding] = []
    suppressed: list[Finding] = []
    skipped: list[SkippedRule] = []
    passed: list[str] = []
    ran: list[str] = []
    strict = os.environ.get("NETDOCTOR_STRICT") == "1"
    collected = snapshot.collected
    for spec in specs:
        if not spec.needs <= collected:
            missing = [n for n in spec.needs if n not in collected]
            reasons = "; ".join(
                snapshot.missing.get(n, f"{n} were not collected") for n in sorted(missing, key=str)
            )
            skipped.append(SkippedRule(spec.code, spec.name, reasons))
            continue
        ctx = RuleContext(
            spec=spec,
            severity=cfg.severity_for(spec.code, spec.severity),
            options=cfg.options_for(spec.code, spec.options),
            framework=snapshot.framework,
        )
        try:
            produced = spec.run(snapshot, ctx)
        except Exception as exc:  # a bug in a rule must not hide the other rules' results
            if strict:
                raise
            skipped.append(SkippedRule(spec.code, spec.name, f"rule crashed ({type(exc).__name__}: {exc}); please report this"))
            continue
        ran.append(spec.code)
        skipped.extend(SkippedRule(spec.code, spec.name, reason, part) for part, reason in ctx.skipped_parts)
        active = 0
        for f in produced:
            if file is not None:
                f = f.with_(file=file)
            why = suppress.reason_for(snapshot.suppressions, f.layer, f.code, f.name)
            if why is not None:
                suppressed.append(f.with_(evidence={**f.evidence, "suppressed_because": why}))
            elif cfg.layer_ignored(f):
                suppressed.append(f.with_(evidence={**f.evidence, "suppressed_because": "per-layer ignore in config"}))
            else:
                findings.append(f)
                active += 1
        if not active and not ctx.skipped_parts:  # a partly judged rule never counts as passed
            passed.append(spec.code)
    target = TargetInfo(
        file=file,
        framework=snapshot.framework,
        framework_version=snapshot.framework_version,
        model_class=snapshot.model_class,
        param_count=snapshot.param_count,
        batch_size=snapshot.batch_size,
        synthetic_inputs=snapshot.synthetic_inputs,
        loss=_describe_loss(snapshot),
        skipped=tuple(skipped),
        rules_passed=tuple(passed),
        layers=tuple(layer_health(snapshot)),
        notes=(*notes, *snapshot.notes),
    )
    spent: dict[str, float] = {}
    if timings is not None:
        spent = {**timings, "rules": time.perf_counter() - t0}
        spent["total"] = sum(spent.values())
    return Report(findings=tuple(findings), targets=(target,), rules_run=tuple(ran), suppressed=tuple(suppressed),
                  timings=spent)


def _describe_loss(snapshot: ModelSnapshot) -> str | None:
    loss = snapshot.loss
    if loss is None:
        return None
    extra = {"default": " (netdoctor default)", "surrogate": " (surrogate, no targets)"}.get(loss.source, "")
    return f"{loss.name}{extra}"
