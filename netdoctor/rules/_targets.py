"""Output range against the targets: the target-based checks of ND503.

The pairings ND503 checks first (softmax into a logits loss, logits into a probability loss...)
compare the output activation with the *loss*. The checks here compare it with the *targets* the
user passed: a softmax cannot produce multi-hot rows, and a sigmoid/tanh cannot reach regression
targets far outside its range. They need the real-data statistics (``snapshot.data``), which the
engine collects whenever ND101-ND103 are selected too; without them they stay silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from netdoctor.rules.format import fmt
from netdoctor.rules.snippets import torch_drop_final
from netdoctor.snapshot import ModelSnapshot

#: Range of bounded output activations.
BOUNDED = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0),
           "hard_tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0)}

#: Substrings of (lower-cased, underscore-free) names of regression losses.
_REGRESSION = ("mse", "meansquared", "mae", "meanabsolute", "l1loss", "huber", "smoothl1", "logcosh")
#: Substrings of names of categorical cross-entropies (softmax over soft/multi-hot labels is a choice there).
_CATEGORICAL = ("categorical", "crossentropyloss", "nllloss", "kldiv", "kullback")


@dataclass(frozen=True)
class TargetMismatch:
    """What is wrong and how to fix it, in the shape ND503's findings use."""

    problem: str
    fix: str
    torch: str
    keras: str
    evidence: dict


def target_mismatch(snap: ModelSnapshot, act: str | None, units: int, final: str) -> TargetMismatch | None:
    """A softmax for multi-hot targets, or a bounded output for regression targets far outside its range."""
    data, loss = snap.data, snap.loss
    if loss is None or act not in BOUNDED:
        return None
    if data is None or data.targets is None:
        return _unreachable(snap, act, units, final)
    t, kind = data.targets, data.target_kind
    lname = loss.name.lower().replace("_", "")
    shape = tuple(t.shape)
    multi_hot = (len(shape) == 2 and units > 1 and shape[-1] == units and t.min >= 0 and t.max <= 1
                 and (kind == "binary" or (kind == "class_index" and t.is_integer)))
    if act == "softmax" and multi_hot and not any(k in lname for k in _CATEGORICAL):
        per_row = float(sum(t.unit_mean)) if t.unit_mean is not None else None
        avg = f" (on average {per_row:.2g} positive labels per sample)" if per_row is not None else ""
        return TargetMismatch(
            problem=(f"the targets are multi-hot{avg}, but a softmax over {units} units sums to 1, so a sample with "
                     f"two labels scores at most 0.5 on each and {loss.name} can never reach its targets"),
            fix="End the model in one sigmoid per label and train it with binary cross-entropy (multi-label).",
            torch=f"{torch_drop_final(snap, 'softmax')}\nloss_fn = nn.BCEWithLogitsLoss()  # on logits, multi-label",
            keras=f'layers.Dense({units}, activation="sigmoid")  # output layer\n'
                  '# model.compile(loss="binary_crossentropy", ...)',
            evidence={"target_kind": kind, "labels_per_sample": per_row})
    lo, hi = BOUNDED[act]
    width = hi - lo
    if kind == "float" and any(k in lname for k in _REGRESSION) and (t.min < lo - width or t.max > hi + width):
        return TargetMismatch(
            problem=(f"the regression targets span [{fmt(t.min)}, {fmt(t.max)}] (mean {fmt(t.mean)}), far outside the "
                     f"range ({fmt(lo)}, {fmt(hi)}) of the {act} that produces the output, so {loss.name} can never "
                     "get near them"),
            fix=f"Use a linear output layer for regression (or scale the targets into ({fmt(lo)}, {fmt(hi)})).",
            torch=f"{torch_drop_final(snap, act)}\n# the layer before it is the linear regression output",
            keras=f"layers.Dense({units})  # linear output for regression, no {act}",
            evidence={"target_kind": kind, "target_min": t.min, "target_max": t.max, "output_range": [lo, hi]})
    return _unreachable(snap, act, units, final)


#: Share of float target rows that are no distribution from which a cross-entropy is read as a regression.
MIN_NOT_DIST = 0.2
#: Relative gradient distance under which the loss is measured to be cross-entropy on soft targets.
MAX_SOFT_CE_ERR = 1e-2


def categorical_name(name: str) -> bool:
    """A categorical cross-entropy by name (not binary, not sparse: those take other targets)."""
    n = name.lower().replace("_", "").replace(" ", "")
    return "crossentropy" in n and "binary" not in n and "sparse" not in n and "withlogits" not in n


def regression_with_cross_entropy(snap: ModelSnapshot, units: int, final: str) -> TargetMismatch | None:
    """Cross-entropy trained against float targets that are no class distributions (a regression), or over one unit.

    Reads the loss probe: ``target_not_dist`` (float targets shaped like the output) and, for losses not
    named a cross-entropy, ``soft_ce_err`` (the measured gradient is soft-target cross-entropy's).
    """
    lp, loss = snap.loss_probe, snap.loss
    if lp is None or loss is None or lp.target_not_dist is None:
        return None
    measured = lp.soft_ce_err is not None and lp.soft_ce_err < MAX_SOFT_CE_ERR
    if not (categorical_name(loss.name) or measured):
        return None
    t = snap.data.targets if snap.data is not None else None
    span = f" (they span [{fmt(t.min)}, {fmt(t.max)}])" if t is not None else ""
    torch_fix = f"nn.Linear(hidden, {units})  # linear regression head\nloss_fn = nn.MSELoss()"
    keras_fix = f'layers.Dense({units})  # linear regression head\n# model.compile(loss="mse", ...)'
    fix = "This is a regression: train a linear head with MSE (nn.MSELoss / loss=\"mse\")."
    ev = {"target_not_dist": lp.target_not_dist, "soft_ce_err": lp.soft_ce_err, "zero_grad_rows": lp.zero_grad_rows,
          "loss_value": loss.value}
    if units == 1:
        zero = "" if lp.zero_grad_rows is None else f" (measured: {lp.zero_grad_rows:.0%} of the samples get no gradient)"
        return TargetMismatch(
            problem=(f"{loss.name} over a single output unit normalizes one class: its probability is always 1, so "
                     f"the loss is constant ({fmt(loss.value)}) whatever the output and the float targets{span}, and "
                     f"it sends zero gradient{zero}"),
            fix=fix, torch=torch_fix, keras=keras_fix, evidence=ev)
    if lp.target_not_dist < MIN_NOT_DIST:
        return None
    how = "is a cross-entropy" if categorical_name(loss.name) else (
        f"sends the gradient of cross-entropy with these targets as class probabilities (measured, relative "
        f"error {fmt(lp.soft_ce_err)})")
    return TargetMismatch(
        problem=(f"{lp.target_not_dist:.0%} of the float target rows are not probability distributions over the "
                 f"{units} units (a negative entry, or a sum other than 1; limit {MIN_NOT_DIST:.0%}){span}, but "
                 f"{loss.name} {how}, which reads each target row as class probabilities: a regression trained with "
                 "a classification loss cannot fit its targets"),
        fix=fix, torch=torch_fix, keras=keras_fix, evidence=ev)


#: Share of float targets outside the output's range, and MSE floor relative to the target variance,
#: from which the output cannot fit its targets (a sigmoid for targets in [-1, 1]: 50% and 0.5x).
MIN_OUTSIDE = 0.2
MIN_FLOOR_VS_VAR = 0.1


def _unreachable(snap: ModelSnapshot, act: str, units: int, final: str) -> TargetMismatch | None:
    """A bounded output whose range leaves a large share of the float targets out of reach (the loss probe)."""
    lp = snap.loss_probe
    if lp is None or not lp.target_outside or not lp.target_var:
        return None
    lo, hi = BOUNDED[act]
    key = "0,1" if lo == 0.0 else "-1,1"
    outside, floor = lp.target_outside.get(key), lp.target_floor.get(key)
    if outside is None or floor is None or outside < MIN_OUTSIDE or floor < MIN_FLOOR_VS_VAR * lp.target_var:
        return None
    return TargetMismatch(
        problem=(f"{outside:.0%} of the float targets lie outside the range ({fmt(lo)}, {fmt(hi)}) of the {act} that "
                 f"produces the output: the smallest MSE it can reach is {fmt(floor)}, {fmt(floor / lp.target_var)}x the "
                 f"target variance {fmt(lp.target_var)} (limits {MIN_OUTSIDE:.0%} and {fmt(MIN_FLOOR_VS_VAR)}x)"),
        fix=f"Use a linear output (or one whose range covers the targets), or rescale the targets into ({fmt(lo)}, {fmt(hi)}).",
        torch=torch_drop_final(snap, act) + ("\n# or put nn.Tanh() there for targets in [-1, 1]" if lo == 0.0 else ""),
        keras=f"layers.Dense({units})  # linear output, no {act}",
        evidence={"target_outside": outside, "mse_floor": floor, "target_var": lp.target_var,
                  "output_range": [lo, hi]})
