"""The engine: select rules, ask the adapter for exactly what they need, run them.

``check`` is the library entry point (re-exported as ``netdoctor.check``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable

from netdoctor import suppress
from netdoctor.config import Config, make_config
from netdoctor.findings import Finding, Report, SkippedRule, TargetInfo
from netdoctor.rules.spec import RuleContext, RuleSpec, registry
from netdoctor.analysis.health import layer_health
from netdoctor.snapshot import ModelSnapshot, Need, ProbeSettings


def selected_rules(config: Config, *, one_shot: bool = False) -> list[RuleSpec]:
    """Rules enabled by ``config``, in code order.

    With ``one_shot=True`` (a pre-flight ``check`` of one probe batch), rules that need a
    training history are left out: they are not applicable without a monitored run,
    so listing them as "skipped" on every check would only be noise.
    """
    return [
        spec
        for spec in registry().values()
        if config.is_selected(spec.code, spec.name) and not (one_shot and Need.HISTORY in spec.needs)
    ]


def merged_needs(specs: Iterable[RuleSpec]) -> frozenset[Need]:
    """Union of the needs of ``specs`` (what the adapter must collect, once)."""
    out: set[Need] = set()
    for s in specs:
        out |= s.needs
    return frozenset(out)


def check(
    model: Any,
    inputs: Any = None,
    targets: Any = None,
    *,
    loss_fn: Any = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    config: Config | None = None,
    input_shape: tuple[int, ...] | None = None,
    settings: ProbeSettings | None = None,
    verify: bool = False,
) -> Report:
    """Diagnose ``model`` on one probe batch.

    Args:
        model: A ``torch.nn.Module`` or a Keras 3 model.
        inputs: The probe inputs: an array/tensor, a tuple/list or dict of them. When
            ``None``, inputs are synthesized from ``input_shape`` (or the Keras model's
            declared input shape) and the data rules are skipped.
        targets: Targets for the loss (optional).
        loss_fn: ``(output, target) -> loss`` (an ``nn.Module``, a Keras loss, any callable).
            Without it: a Keras model's compiled loss, else a documented default for the
            targets (cross-entropy for integer class targets, MSE for float targets).
        select: Codes, prefixes or names of rules to run (default: all).
        ignore: Codes, prefixes or names of rules not to run.
        config: A full :class:`~netdoctor.config.Config` (``select``/``ignore`` refine it).
        input_shape: Shape of one sample (without the batch axis) for synthetic inputs.
        settings: Probe settings (batch cap, seed...).
        verify: Verify each finding's recommended fix on a copy of the model (before/after
            measurements and a short training probe, see :mod:`netdoctor.verify`); the result
            is in each finding's ``verification``.

    Returns:
        A :class:`~netdoctor.findings.Report`. The model is left bit-for-bit as it was.

    Raises:
        netdoctor.errors.NetdoctorError: For problems the user can fix (bad data shape,
            a loss that raises, an unsupported object), with a one-line message.
    """
    from netdoctor.frameworks import detect_framework, get_adapter

    t0 = time.perf_counter()
    cfg = make_config(select=select, ignore=ignore, base=config)
    framework = detect_framework(model)
    specs = selected_rules(cfg, one_shot=True)
    needs = merged_needs(specs)
    adapter = get_adapter(framework)
    snapshot = adapter.collect(
        model,
        inputs=inputs,
        targets=targets,
        loss_fn=loss_fn,
        needs=needs,
        settings=settings or ProbeSettings(),
        input_shape=input_shape,
    )
    t1 = time.perf_counter()
    report = run_rules(snapshot, specs, cfg)
    t2 = time.perf_counter()
    timings = {"collect": t1 - t0, "rules": t2 - t1, "total": t2 - t0}
    report = Report(
        findings=report.findings,
        targets=report.targets,
        rules_run=report.rules_run,
        suppressed=report.suppressed,
        timings=timings,
    )
    if verify:
        from netdoctor.verify import verify_report

        report = verify_report(report, snapshot, model=model, inputs=inputs, targets=targets, loss_fn=loss_fn,
                               config=cfg, settings=settings or ProbeSettings(), input_shape=input_shape)
    return report


def run_rules(snapshot: ModelSnapshot, specs: Iterable[RuleSpec], config: Config | None = None,
              file: str | None = None) -> Report:
    """Run ``specs`` on a finished snapshot (pure: no framework involved).

    Rules whose needs the snapshot lacks are reported as skipped with the adapter's reason.
    Findings on layers marked with ``netdoctor.allow`` or matched by a per-layer ignore are
    moved to ``Report.suppressed``.
    """
    cfg = config or Config()
    findings: list[Finding] = []
    suppressed: list[Finding] = []
    skipped: list[SkippedRule] = []
    passed: list[str] = []
    ran: list[str] = []
    strict = os.environ.get("NETDOCTOR_STRICT") == "1"
    for spec in specs:
        missing = [n for n in spec.needs if n not in snapshot.collected]
        if missing:
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
        if not active:
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
        notes=tuple(snapshot.notes),
    )
    return Report(findings=tuple(findings), targets=(target,), rules_run=tuple(ran), suppressed=tuple(suppressed))


def _describe_loss(snapshot: ModelSnapshot) -> str | None:
    loss = snapshot.loss
    if loss is None:
        return None
    extra = {"default": " (netdoctor default)", "surrogate": " (surrogate, no targets)"}.get(loss.source, "")
    return f"{loss.name}{extra}"
