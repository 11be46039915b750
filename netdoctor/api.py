"""``netdoctor.check``: configuration -> collection -> rules -> verification, on one page.

:func:`check` is the library entry point (``netdoctor.check``). :func:`check_model` is the
same pipeline for callers that already know the framework and hold a finished
:class:`~netdoctor.config.Config` (the CLI's workers and the pytest plugin, with a model
from :func:`netdoctor.modelfile.loader.load_model_file`): nothing is detected or
configured twice, and the report is built once, by :func:`netdoctor.engine.run_rules`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Iterable, Mapping

import numpy as np

from netdoctor.config import Config, make_config
from netdoctor.engine import merged_needs, run_rules, selected_rules
from netdoctor.findings import Finding, Report
from netdoctor.frameworks import detect_framework, get_adapter
from netdoctor.snapshot import ProbeSettings
from netdoctor.integrations import lightning_module as lightning
from netdoctor.verify import NOT_VERIFIED, verify_report

__all__ = ["check", "check_model"]


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
    fit_probe: bool = False,
) -> Report:
    """Diagnose ``model`` on one probe batch.

    Args:
        model: A ``torch.nn.Module`` or a Keras 3 model.
        inputs: The probe inputs: an array/tensor, a tuple/list or dict of them. When
            ``None``, inputs are synthesized from ``input_shape`` (or the Keras model's
            declared input shape) and the data rules are skipped.
        targets: Targets for the loss (optional).
        loss_fn: ``(output, target) -> loss`` (an ``nn.Module``, a Keras loss, any callable).
            Without it: a LightningModule's own ``training_step((inputs, targets), 0)``, a
            Keras model's compiled loss, else a documented default for the targets
            (cross-entropy for integer class targets, MSE for float targets).
        select: Codes, prefixes or names of rules to run (default: all).
        ignore: Codes, prefixes or names of rules not to run.
        config: A full :class:`~netdoctor.config.Config` (``select``/``ignore`` refine it).
        input_shape: Shape of one sample (without the batch axis) for synthetic inputs.
        settings: Probe settings (batch cap, seed...).
        verify: Verify each finding's recommended fix on a copy of the model (before/after
            measurements and a short training probe, see :mod:`netdoctor.verify`); the result
            is in each finding's ``verification``.
        fit_probe: Also train a copy of the model on the probe batch for a bounded number of
            steps and report (ND509) when the loss does not approach its floor, with the
            measurements that explain it (see :mod:`netdoctor.verify.fit`; costs a few checks).

    Returns:
        A :class:`~netdoctor.findings.Report`. The model is left bit-for-bit as it was.

    Raises:
        netdoctor.errors.NetdoctorError: For problems the user can fix (bad data shape,
            a loss that raises, an unsupported object), with a one-line message.
    """
    t0 = time.perf_counter()
    cfg = make_config(select=select, ignore=ignore, base=config)
    framework = detect_framework(model)
    if loss_fn is None and inputs is not None and lightning.is_lightning_module(model):
        # a LightningModule's loss is its own training_step, on the batch as a loader would yield it
        inputs, targets, loss_fn = ((inputs, targets) if targets is not None else inputs), None, \
            lightning.TrainingStep(model)
    return check_model(model, inputs, targets, framework=framework, config=cfg, loss_fn=loss_fn,
                       input_shape=input_shape, settings=settings, verify=verify, fit_probe=fit_probe, started=t0)


def check_model(
    model: Any,
    inputs: Any = None,
    targets: Any = None,
    *,
    framework: str,
    config: Config,
    loss_fn: Any = None,
    input_shape: tuple[int, ...] | None = None,
    settings: ProbeSettings | None = None,
    verify: bool = False,
    fit_probe: bool = False,
    file: str | None = None,
    notes: Iterable[str] = (),
    timings: Mapping[str, float] | None = None,
    started: float | None = None,
    layer_lines: Mapping[str, int] | None = None,
) -> Report:
    """:func:`check` for a model whose framework is known, with a finished configuration.

    Args:
        model: The model (of ``framework``).
        inputs: Probe inputs, or ``None`` (synthetic).
        targets: Probe targets.
        framework: ``"torch"`` or ``"keras"`` (from :func:`netdoctor.frameworks.detect_framework`).
        config: The configuration, used as given.
        loss_fn: The loss, or ``None`` (the adapter's default).
        input_shape: Shape of one sample for synthetic inputs.
        settings: Probe settings.
        verify: Verify each finding's fix (see :func:`check`).
        fit_probe: Run the fit probe (see :func:`check`).
        file: The model file, stamped on the report's findings and target.
        notes: Remarks put first in the target's notes (e.g. where the data came from).
        timings: Phases timed before this call (e.g. ``{"load": seconds}``).
        started: ``time.perf_counter()`` when the check began (default: now).
        layer_lines: ``{layer name: line}`` where the model file created its layers
            (:attr:`netdoctor.modelfile.loader.LoadedModel.layer_lines`); stamped on the
            findings as :attr:`~netdoctor.findings.Finding.line`.

    Returns:
        The report (see :func:`check`).
    """
    t0 = time.perf_counter() if started is None else started
    settings = settings or ProbeSettings()
    specs = selected_rules(config, one_shot=True, fit_probe=fit_probe)
    # NaN and Inf are what several rules look for: numpy's warnings about them while the statistics
    # are reduced and judged would only be noise on the user's console
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        snapshot = get_adapter(framework).collect(
            model,
            inputs=inputs,
            targets=targets,
            loss_fn=loss_fn,
            needs=merged_needs(specs),
            settings=settings,
            input_shape=input_shape,
        )
        before = {**(timings or {}), "collect": time.perf_counter() - t0}
        if fit_probe:
            from netdoctor.verify.fit import fit_probe as run_fit_probe

            t1 = time.perf_counter()
            snapshot = run_fit_probe(snapshot, model=model, inputs=inputs, targets=targets, loss_fn=loss_fn,
                                     settings=settings, input_shape=input_shape)
            before["fit_probe"] = time.perf_counter() - t1
        report = run_rules(snapshot, specs, config, file, notes=tuple(notes), timings=before)
    if verify and isinstance(loss_fn, lightning.TrainingStep):
        why = {"verdict": NOT_VERIFIED, "reason": "the loss is the LightningModule's own training_step(), which a "
               "fixed copy of the model cannot run; add a data function and loss_fn to verify fixes"}
        report = replace(report, findings=tuple(f.with_(verification=why) for f in report.findings))
    elif verify:
        report = verify_report(report, snapshot, model=model, inputs=inputs, targets=targets, loss_fn=loss_fn,
                               config=config, settings=settings, input_shape=input_shape)
    if layer_lines:
        report = replace(report, findings=tuple(_located(f, layer_lines) for f in report.findings),
                         suppressed=tuple(_located(f, layer_lines) for f in report.suppressed))
    return report


def _located(finding: Finding, lines: Mapping[str, int]) -> Finding:
    """``finding`` with the line of its layer: the longest leading part of the layer's name that
    was located (``dense_1/relu``, a fused activation, is at the line of ``dense_1``; torch's
    ``encoder.layers.0.linear1``, a deep copy, at the line of ``encoder``)."""
    name = finding.layer or ""
    while name:
        line = lines.get(name)
        if line is not None:
            return finding.with_(line=line)
        name = name[:max(name.rfind("/"), name.rfind("."), 0)]
    return finding
