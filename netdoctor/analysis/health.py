"""Per-layer health rows (gradient norm, activation scale, dead/saturated fractions).

Reporters show them as the layer table and the charts; ``TargetInfo.layers`` carries them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netdoctor.snapshot import ModelSnapshot, ParamRecord


def relative_grad(p: ParamRecord) -> float | None:
    """``|grad| / max(|W|, |W_ref|)``: the gradient relative to the weights.

    ``|W_ref| = sqrt(size / fan_in)`` is the norm of a unit-gain initialization of the same
    shape; the floor keeps tiny or zero-initialized heads from inflating the ratio. The ND3xx
    rules and the reports' ``grad/weight`` column use this one definition. Records built from
    norms alone (the training monitor, ``size <= 1``) get the plain ratio.
    """
    if p.grad is None:
        return None
    size = max(p.stats.size, 1)
    if size <= 1:
        if p.stats.l2 > 0:
            return float(p.grad.l2 / p.stats.l2)
        return float("inf") if p.grad.l2 > 0 else 0.0
    fan_in = p.fan_in or (size // max(p.units or 1, 1)) or 1
    ref = math.sqrt(size / max(fan_in, 1))
    denom = max(p.stats.l2, ref)
    return float(p.grad.l2 / denom) if denom > 0 else None


def layer_health(snapshot: ModelSnapshot) -> list[dict[str, Any]]:
    """Rows of the per-layer health table shown by reporters.

    One row per weight layer (and per activation layer with unit statistics), with the
    gradient norm, weight norm, the relative gradient (:func:`relative_grad`, as the ND3xx
    rules measure it), the activation scale, and dead/saturated
    fractions where measured. Weight layers also carry ``weight_std`` and, when the
    adapter knows them, ``fan_in``/``fan_out`` (for the He/Xavier reference in reports).
    """
    rows: list[dict[str, Any]] = []
    for rec in snapshot.layers:
        if not (rec.is_weight_layer or rec.unit_active is not None or rec.unit_saturated is not None):
            continue
        row: dict[str, Any] = {"layer": rec.name, "type": rec.type_name, "kind": rec.kind}
        w = rec.weight
        if w is not None:
            row["weight_norm"] = w.stats.l2
            if w.stats.size > 1:  # records built from norms only (the monitor) carry no spread
                row["weight_std"] = w.stats.std
            if w.fan_in is not None:
                row["fan_in"] = w.fan_in
            if w.fan_out is not None:
                row["fan_out"] = w.fan_out
            if w.grad is not None:
                row["grad_norm"] = w.grad.l2
                row["grad_to_weight"] = relative_grad(w)
        if rec.output is not None:
            row["act_std"] = rec.output.std
        if rec.unit_active is not None and len(rec.unit_active):
            row["dead_frac"] = _share(np.asarray(rec.unit_active) <= 0.0)
        if rec.unit_saturated is not None and len(rec.unit_saturated):
            row["saturated_frac"] = _share(np.asarray(rec.unit_saturated) > 0.5)
        rows.append(row)
    return rows


def _share(mask: np.ndarray) -> float:
    """The fraction of ``True`` in a non-empty mask (``np.mean`` without its Python wrapper)."""
    return np.count_nonzero(mask) / mask.size
