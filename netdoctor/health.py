"""Per-layer health rows (gradient norm, activation scale, dead/saturated fractions).

Reporters show them as the layer table and the charts; ``TargetInfo.layers`` carries them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netdoctor.snapshot import ModelSnapshot


def layer_health(snapshot: ModelSnapshot) -> list[dict[str, Any]]:
    """Rows of the per-layer health table shown by reporters.

    One row per weight layer (and per activation layer with unit statistics), with the
    gradient norm, weight norm, their ratio, the activation scale, and dead/saturated
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
                row["grad_to_weight"] = w.grad.l2 / w.stats.l2 if w.stats.l2 > 0 else float("inf") if w.grad.l2 > 0 else 0.0
        if rec.output is not None:
            row["act_std"] = rec.output.std
        if rec.unit_active is not None and len(rec.unit_active):
            row["dead_frac"] = float(np.mean(np.asarray(rec.unit_active) <= 0.0))
        if rec.unit_saturated is not None and len(rec.unit_saturated):
            row["saturated_frac"] = float(np.mean(np.asarray(rec.unit_saturated) > 0.5))
        rows.append(row)
    return rows
