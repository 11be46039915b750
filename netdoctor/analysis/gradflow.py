"""Gradient flow of one probe backward pass: each weight layer's relative gradient, in depth order.

:func:`gradient_chain` measures every weight layer with the one relative gradient of
:func:`netdoctor.analysis.health.relative_grad`; :func:`gradient_reaches` says whether that
gradient reaches every layer without vanishing; :func:`vanishing_cause` names the likely cause when
it does not, which is what ND301 recommends and what its verified fix changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from netdoctor.analysis.health import relative_grad
from netdoctor.analysis.init import activation_family, far_too_small
from netdoctor.snapshot import (
    KIND_EMBEDDING,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
    LayerRecord,
    ModelSnapshot,
    Need,
    ParamRecord,
)

@dataclass(frozen=True)
class GradRow:
    """One weight layer's gradient measurement."""

    name: str
    rec: LayerRecord
    param: ParamRecord
    grad: float      # |dL/dW|
    weight: float    # |W|
    ref_norm: float  # max(|W|, norm of a unit-gain init of the same shape)
    rel: float       # grad / ref_norm


def gradient_chain(snap: ModelSnapshot) -> list[GradRow]:
    """Weight layers (embeddings excluded) with a finite, non-zero weight gradient, in execution order."""
    return list(snap.memo("gradient_chain", lambda: tuple(_gradient_chain(snap))))


def _gradient_chain(snap: ModelSnapshot) -> list[GradRow]:
    rows: list[GradRow] = []
    for rec in snap.weight_layers():
        p = rec.param(ROLE_WEIGHT) or rec.param(ROLE_RECURRENT)
        if rec.kind == KIND_EMBEDDING or p is None or not p.trainable or p.grad is None:
            continue
        g = float(p.grad.l2)
        rel = relative_grad(p)
        if p.grad.frac_nonfinite > 0 or not 0 < g < math.inf or not rel:
            continue
        rows.append(GradRow(rec.name, rec, p, g, float(p.stats.l2), g / rel, rel))
    return rows


def summed_batch(snap: ModelSnapshot, *, min_rows: int = 16, tolerance: float = 0.05) -> int | None:
    """The probe batch size when the user's loss is a sum over the batch, else ``None``.

    The adapter evaluates the loss again on the two halves of the output rows
    (``LossProbe.sum_ratio = (L1 + L2) / L``): 2 for a mean over the batch, exactly 1 for a sum.
    A summed loss's gradients are batch-size times a mean's, which is what the
    gradient-to-weight limits of ND302 are calibrated on.
    """
    lp, loss = snap.loss_probe, snap.loss
    if lp is None or loss is None or loss.source != "user" or lp.sum_ratio is None or lp.rows < min_rows:
        return None
    if abs(lp.sum_ratio - 1.0) > tolerance:
        return None
    return max(int(snap.batch_size), 1)


def gradient_reaches(snap: ModelSnapshot, min_relative: float, max_drop: float) -> GradRow | None:
    """The weakest-fed weight layer when the probe gradient reaches every trainable weight layer
    without vanishing (relative gradient at least ``min_relative`` and at least ``max_drop`` times
    the best-fed layer's), else ``None`` (also when gradients were not measured)."""
    if not snap.has(Need.GRADIENTS):
        return None
    chain = gradient_chain(snap)
    fed = {r.name for r in chain}
    for rec in snap.weight_layers(executed_only=True):
        p = rec.param(ROLE_WEIGHT) or rec.param(ROLE_RECURRENT)
        if rec.kind != KIND_EMBEDDING and p is not None and p.trainable and rec.name not in fed:
            return None  # a layer gets no (finite) gradient at all
    if not chain:
        return None
    weakest = min(chain, key=lambda r: r.rel)
    if weakest.rel < min_relative or weakest.rel < max_drop * max(r.rel for r in chain):
        return None
    return weakest


@dataclass(frozen=True)
class VanishingCause:
    """The likely cause of vanishing gradients, read from the layers of a gradient chain.

    Attributes:
        kind: ``"constant"`` (a weight matrix downstream of the early layers is constant),
            ``"saturating"`` (most hidden layers end in sigmoid/tanh), ``"small-init"`` (hidden
            layers initialized far below their reference) or ``"depth"`` (none of these: the
            signal fades through depth).
        layers: The layers the cause is about: the constant layer, the saturating or too-small
            hidden layers, or every hidden layer.
    """

    kind: str
    layers: tuple[LayerRecord, ...]


def vanishing_cause(snap: ModelSnapshot, chain: list[GradRow], early: str) -> VanishingCause:
    """Why the gradient of ``chain`` (at least two rows) vanishes before it reaches layer ``early``."""
    names = [r.name for r in snap.weight_layers()]
    const = [r for r in snap.weight_layers()[names.index(early) + 1:]
             if r.weight is not None and r.weight.stats.size > 1 and r.weight.stats.std == 0.0]
    if const:  # a constant matrix downstream sends back an error that sums to zero across its units
        return VanishingCause("constant", (const[0],))
    hidden = [r.rec for r in chain[:-1]]
    sat = [r for r in hidden if activation_family(r.activation) == "saturating"]
    if len(sat) * 2 >= len(hidden):
        return VanishingCause("saturating", tuple(sat or hidden))
    small = [r for r in hidden if far_too_small(r.param(ROLE_WEIGHT), r.activation)]
    if small:
        return VanishingCause("small-init", tuple(small))
    return VanishingCause("depth", tuple(hidden))


def time_growth(rec: LayerRecord) -> tuple[float, int] | None:
    """``(growth, steps)`` of a recurrent layer measured by the adapter (``attrs["time_growth"]``): the norm of
    the gradient that a unit gradient sent into the last hidden state reaches the first step's state with,
    over ``steps`` steps. Healthy initializations shrink it (torch's default LSTM: ~1e-11 over 50 steps);
    above 1 the recurrence amplifies the gradient backward in time."""
    growth, steps = rec.attrs.get("time_growth"), rec.attrs.get("time_steps")
    if growth is None or steps is None or not math.isfinite(float(growth)):
        return None
    return float(growth), int(steps)
