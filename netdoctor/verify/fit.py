"""The fit probe: can the model fit its own probe batch?

The classic sanity check (Karpathy, "A Recipe for Training Neural Networks": overfit one batch).
Opt-in (``check(..., fit_probe=True)``, ``netdoctor check --fit-probe``): the framework's fixer
trains a deep copy of the model on the probe batch for a bounded number of full-batch Adam steps
(seeded, the same training probe ``--verify`` runs, only longer) and the losses go into the
snapshot as :class:`~netdoctor.snapshot.FitProbe`, which ND509 judges. The user's model and
every global RNG are left exactly as they were (the fixer's guarantee).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from netdoctor.snapshot import FitProbe, ModelSnapshot, Need, ProbeSettings

#: Adam steps of the fit probe: enough for a healthy small network to drive its probe loss well
#: below half its starting value (see ND509's calibration), bounded so the cost stays a few
#: times a check (bench/bench_fit_probe.py measures it).
FIT_STEPS = 150

#: The probe stops early once the loss is below this share of where it started (fitted: ND509's
#: limit is 0.5x), or below :func:`floor_scale` of the targets.
FIT_STOP = 0.25


def floor_scale(snapshot: ModelSnapshot) -> float:
    """A loss this small is at its floor for the targets: a tenth of ``ln C`` for class targets, a
    tenth of the target variance for float targets (0 when neither is known)."""
    lp = snapshot.loss_probe
    if lp is None:
        return 0.0
    if lp.expected_init_loss is not None:
        return 0.1 * lp.expected_init_loss
    if lp.target_var:
        return 0.1 * lp.target_var
    return 0.0


def fit_probe(snapshot: ModelSnapshot, *, model: Any, inputs: Any, targets: Any, loss_fn: Any,
              settings: ProbeSettings, input_shape: Any, steps: int = FIT_STEPS) -> ModelSnapshot:
    """``snapshot`` with ``fit`` filled and :data:`Need.FIT` collected (or missing, with the reason)."""
    from netdoctor.frameworks import get_fixer
    from netdoctor.verify.protocol import NotApplicable

    t0 = time.perf_counter()
    missing = dict(snapshot.missing)
    missing.pop(Need.FIT, None)
    if inputs is None:
        missing[Need.FIT] = "the fit probe needs real inputs and targets (it fits the model to them)"
        return dataclasses.replace(snapshot, missing=missing)
    fixer = get_fixer(snapshot.framework)(model, inputs=inputs, targets=targets, loss_fn=loss_fn,
                                          settings=settings, input_shape=input_shape)
    start = snapshot.loss.value if snapshot.loss is not None else float("nan")
    stop = max(FIT_STOP * start, floor_scale(snapshot)) if start == start and start > 0 else None
    try:
        with fixer.guard():
            res = fixer.probe(None, steps, "full", 16, stop_below=stop)
    except NotApplicable as exc:
        missing[Need.FIT] = f"the fit probe could not run ({exc})"
        return dataclasses.replace(snapshot, missing=missing)
    except Exception as exc:  # noqa: BLE001 - a probe that crashes skips ND509 with the reason, never the check
        import os

        if os.environ.get("NETDOCTOR_STRICT") == "1":
            raise
        line = (str(exc).strip().splitlines() or [""])[0][:160]
        missing[Need.FIT] = f"the fit probe failed ({type(exc).__name__}: {line}); please report this"
        return dataclasses.replace(snapshot, missing=missing)
    fit = FitProbe(steps=res.steps, optimizer=res.optimizer, losses=tuple(res.losses), final=float(res.final),
                   seconds=time.perf_counter() - t0, note=res.note)
    return dataclasses.replace(snapshot, fit=fit, collected=snapshot.collected | {Need.FIT}, missing=missing)
