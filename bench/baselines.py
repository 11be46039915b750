"""Baseline detectors for the detection benchmark, implemented from their published rules.

Both read the same :class:`~netdoctor.snapshot.ModelSnapshot` that netdoctor's rules read
(one probe forward/backward pass at initialization, same batch, same seed), so the only
difference between the tools in ``bench/detect.py`` is the decision logic. Each detector
returns ``{netdoctor code: evidence text}``: the published symptom mapped onto the code of
netdoctor's catalogue that names the same problem (see ``SCOPE``).

``autotrainer``
    AUTOTRAINER (Zhang et al., ICSE 2021, ``utils/monitor.py``; thresholds from its
    ``demo.py`` as summarised in shared/BENCHMARK-CASES.md section 1.1):

    * vanishing gradient (ND301): ``|g_first| / |g_last| <= 1e-3`` and ``|g_first| <= 1e-4``,
      with ``g`` the kernel gradient of the first and the last weight layer;
    * exploding gradient (ND302): that ratio ``>= 70``, any NaN/Inf in loss or gradients, or a
      loss ``>= 1e3``; NaN/Inf in loss or gradients is also reported as ND303 and NaN/Inf in
      the weights as ND204 (AUTOTRAINER calls all of them "explode");
    * dying ReLU (ND401): ``>= 70 %`` of all kernel-gradient entries exactly zero (from the
      per-tensor ``frac_zero`` of the gradient statistics);
    * abnormal data (ND101): mean ``|activation|`` of any hidden layer output ``>= 10``
      (Keras layer outputs: for a Dense with a fused activation, the post-activation output);
    * improper output activation / loss (ND503): binary cross-entropy needs a sigmoid output,
      categorical cross-entropy a softmax, MSE a linear output; a probability loss whose
      per-sample ``sum |output|`` exceeds 1.1 (from the per-unit output means).
      Adapted to logit losses, which AUTOTRAINER's Keras-2 world did not have: a loss that
      takes logits (``CrossEntropyLoss``, ``BCEWithLogitsLoss``, ``from_logits=True``) needs a
      linear output, ``NLLLoss`` a log-softmax. Only a loss the model file chose is judged
      (the same restriction netdoctor's ND503 applies).

``smdebugger``
    Absolute per-tensor thresholds in the style of Amazon SageMaker Debugger's built-in rules,
    with DeepDiagnosis' input and saturation checks (RULES.md, "What other tools use"):

    * vanishing gradient (ND301): mean ``|g|`` of any trainable tensor's gradient ``< 1e-7``;
    * exploding gradient (ND302): mean ``|g|`` of any gradient ``> 1e6``;
    * exploding tensor: NaN/Inf in loss or gradients (ND303), weights (ND204), inputs (ND102);
    * dead ReLU (ND401): in some ReLU layer, more than 50 % of the units are active on fewer
      than 1 % of the samples;
    * saturation (ND402): in some sigmoid/tanh layer (the output one included), more than 50 %
      of the pre-activations beyond +-5. DeepDiagnosis' cut-off: the probe measures
      saturation at ``|pre-activation| > 5`` (``ProbeSettings.saturation_preact``); SageMaker's
      own +-9.5 (tanh) and -23/17 (sigmoid) would fire less often;
    * poor initialization (ND203): the variances of the activation inputs (outputs of the
      weight layers that feed a relu/tanh/sigmoid) differ by more than 10x across layers;
      SageMaker's second condition (gradient percentile spread) needs percentiles the
      snapshot does not keep and is left out;
    * unnormalized input (ND101): any floating-point model input with ``min < -1`` or
      ``max > 1`` (UMLAUT / DeepDiagnosis). Integer inputs (token ids) are skipped.

Neither tool looks at architecture: no residual, normalization or head awareness, which is
what the benchmark is meant to show.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from netdoctor.snapshot import KIND_ACTIVATION, ROLE_WEIGHT, LayerRecord, ModelSnapshot, Need

#: What the baselines read beyond netdoctor's own needs: a gradient's share of zeros and mean |g|
#: (netdoctor's rules read a gradient's norm only) and the mean |x| of the layer outputs (no rule
#: reads it either).
NEEDS: frozenset[Need] = frozenset({Need.GRADIENT_MOMENTS, Need.SPARSITY})

#: Codes each baseline can raise at all (its "scope" in the benchmark tables).
SCOPE: dict[str, frozenset[str]] = {
    "autotrainer": frozenset({"ND101", "ND204", "ND301", "ND302", "ND303", "ND401", "ND503"}),
    "smdebugger": frozenset({"ND101", "ND102", "ND203", "ND204", "ND301", "ND302", "ND303", "ND401", "ND402"}),
}

TITLES = {
    "netdoctor": "netdoctor",
    "autotrainer": "AUTOTRAINER rules",
    "smdebugger": "SageMaker-Debugger-style thresholds",
}

RELU_NAMES = frozenset({"relu", "relu6"})
SATURATING_NAMES = frozenset({"sigmoid", "tanh"})


def _g(x: float) -> str:
    return f"{x:.3g}"


# -- shared measurements ----------------------------------------------------------------
def _kernel_grads(snap: ModelSnapshot) -> list[tuple[LayerRecord, float, int, float, float]]:
    """``(layer, |g|, size, frac_zero, frac_nonfinite)`` of each weight layer's kernel gradient,
    in execution order."""
    out = []
    for rec in snap.weight_layers():
        p = rec.param(ROLE_WEIGHT)
        if p is None or not p.trainable or p.grad is None:
            continue
        out.append((rec, float(p.grad.l2), int(p.grad.size), float(p.grad.frac_zero), float(p.grad.frac_nonfinite)))
    return out


def _nonfinite_grads(snap: ModelSnapshot) -> list[str]:
    return [f"{rec.name}.{p.name}" for rec, p in snap.iter_params()
            if p.grad is not None and p.grad.frac_nonfinite > 0]


def _nonfinite_weights(snap: ModelSnapshot) -> list[str]:
    return [f"{rec.name}.{p.name}" for rec, p in snap.iter_params() if p.stats.frac_nonfinite > 0]


def _loss_value(snap: ModelSnapshot) -> float | None:
    return None if snap.loss is None else float(snap.loss.value)


def _fused(snap: ModelSnapshot, rec: LayerRecord) -> bool:
    """A Keras weight layer whose activation is a separate record ``<name>/<act>``."""
    prefix = rec.name + "/"
    return any(r.name.startswith(prefix) and r.kind == KIND_ACTIVATION for r in snap.layers)


def _final_records(snap: ModelSnapshot) -> set[str]:
    """The output weight layer and the records that ran after it (the output activation)."""
    head = snap.output_layer
    if head is None:
        return set()
    names = [r.name for r in snap.layers]
    i = names.index(head.name)
    return set(names[i:])


def _loss_family(snap: ModelSnapshot) -> str | None:
    """``binary``/``categorical``/``nll``/``mse`` or ``None`` (other or not the user's loss)."""
    loss = snap.loss
    if loss is None or loss.source != "user":
        return None
    n = loss.name.lower().replace("_", "").replace(" ", "")
    if "nll" in n:
        return "nll"
    if "binary" in n or "bce" in n:
        return "binary"
    if "crossentropy" in n:
        return "categorical"
    if "squared" in n or n.startswith("mse") or n == "mseloss":
        return "mse"
    return None


def _takes_logits(snap: ModelSnapshot) -> bool:
    loss = snap.loss
    return loss is not None and (loss.from_logits is True or loss.expects == "logits")


# -- AUTOTRAINER --------------------------------------------------------------------------
def autotrainer(snap: ModelSnapshot) -> dict[str, str]:
    """AUTOTRAINER's symptom rules on one probe batch; see the module docstring."""
    out: dict[str, str] = {}
    grads = _kernel_grads(snap)
    loss = _loss_value(snap)
    if len(grads) >= 2:
        g_first, g_last = grads[0][1], grads[-1][1]
        if math.isfinite(g_first) and math.isfinite(g_last) and g_last > 0:
            ratio = g_first / g_last
            if ratio <= 1e-3 and g_first <= 1e-4:
                out["ND301"] = f"|g_first|/|g_last| = {_g(ratio)} <= 1e-3 and |g_first| = {_g(g_first)} <= 1e-4"
            if ratio >= 70:
                out["ND302"] = f"|g_first|/|g_last| = {_g(ratio)} >= 70"
    bad_g = _nonfinite_grads(snap)
    loss_bad = loss is not None and not math.isfinite(loss)
    if bad_g or loss_bad:
        why = f"NaN/Inf in {'the loss' if loss_bad else ''}{' and ' if loss_bad and bad_g else ''}" \
              f"{'gradients of ' + ', '.join(bad_g[:3]) if bad_g else ''}"
        out["ND303"] = why
        out.setdefault("ND302", why)
    elif loss is not None and loss >= 1e3:
        out.setdefault("ND302", f"loss {_g(loss)} >= 1e3")
    bad_w = _nonfinite_weights(snap)
    if bad_w:
        out["ND204"] = f"NaN/Inf in weights {', '.join(bad_w[:3])}"
    total = sum(size for _, _, size, _, _ in grads)
    if total:
        zero = sum(size * fz for _, _, size, fz, _ in grads) / total
        if zero >= 0.7:
            out["ND401"] = f"{zero:.0%} of kernel-gradient entries are exactly zero (>= 70%)"
    final = _final_records(snap)
    worst = None
    for rec in snap.layers:
        if rec.name in final or rec.output is None or (rec.is_weight_layer and _fused(snap, rec)):
            continue
        m = float(rec.output.abs_mean)
        if math.isfinite(m) and (worst is None or m > worst[1]):
            worst = (rec.name, m)
    if worst is not None and worst[1] >= 10:
        out["ND101"] = f"mean |activation| of `{worst[0]}` = {_g(worst[1])} >= 10"
    mismatch = _autotrainer_output(snap)
    if mismatch:
        out["ND503"] = mismatch
    return out


def _autotrainer_output(snap: ModelSnapshot) -> str | None:
    fam = _loss_family(snap)
    out = snap.output
    if fam is None or out is None:
        return None
    act = (out.final_activation or "linear").lower()
    logits = _takes_logits(snap)
    if fam == "nll":
        need = "log_softmax"
    elif logits:
        need = "linear"
    else:
        need = {"binary": "sigmoid", "categorical": "softmax", "mse": "linear"}[fam]
    if act != need:
        return f"{snap.loss.name} needs a {need} output, the model ends in {act}"
    if fam in ("binary", "categorical") and not logits:
        st = out.stats
        if st.min < 0:
            return f"output has negative values (min {_g(st.min)}) under a probability loss"
        means = np.asarray(st.unit_mean if st.unit_mean is not None else [st.mean], dtype=float)
        units = int(st.shape[-1]) if len(st.shape) >= 2 else 1
        per_sample = float(np.abs(means).sum()) if units > 1 else float(st.abs_max)
        if per_sample > 1.1:
            return f"per-sample sum |output| ~ {_g(per_sample)} > 1.1 under a probability loss"
    return None


# -- SageMaker Debugger style ---------------------------------------------------------------
def smdebugger(snap: ModelSnapshot) -> dict[str, str]:
    """Absolute per-tensor thresholds (SageMaker Debugger, DeepDiagnosis); see the module docstring."""
    out: dict[str, str] = {}
    tiny, huge = None, None
    for rec, p in snap.iter_params():
        if p.grad is None or not p.trainable or p.grad.frac_nonfinite > 0 or p.grad.size == 0:
            continue
        m = float(p.grad.abs_mean)
        if m < 1e-7 and (tiny is None or m < tiny[1]):
            tiny = (f"{rec.name}.{p.name}", m)
        if m > 1e6 and (huge is None or m > huge[1]):
            huge = (f"{rec.name}.{p.name}", m)
    if tiny:
        out["ND301"] = f"mean |gradient| of `{tiny[0]}` = {_g(tiny[1])} < 1e-7"
    if huge:
        out["ND302"] = f"mean |gradient| of `{huge[0]}` = {_g(huge[1])} > 1e6"
    bad_g = _nonfinite_grads(snap)
    loss = _loss_value(snap)
    if bad_g or (loss is not None and not math.isfinite(loss)):
        out["ND303"] = "NaN/Inf in " + (", ".join(bad_g[:3]) if bad_g else "the loss")
    bad_w = _nonfinite_weights(snap)
    if bad_w:
        out["ND204"] = f"NaN/Inf in weights {', '.join(bad_w[:3])}"
    if snap.data is not None:
        bad_x = [k for k, st in snap.data.inputs.items() if st.frac_nonfinite > 0]
        if bad_x or (snap.data.targets is not None and snap.data.targets.frac_nonfinite > 0):
            out["ND102"] = "NaN/Inf in " + (", ".join(bad_x) if bad_x else "the targets")
        for k, st in snap.data.inputs.items():
            if st.is_integer:
                continue
            if st.min < -1 or st.max > 1:
                out["ND101"] = f"input `{k}` spans [{_g(st.min)}, {_g(st.max)}] (outside [-1, 1])"
                break
    for rec in snap.layers:
        act = (rec.activation or rec.type_name or "").lower()
        if rec.kind != KIND_ACTIVATION:
            continue
        if act in RELU_NAMES and rec.unit_active is not None and len(rec.unit_active):
            frac = float(np.mean(np.asarray(rec.unit_active, dtype=float) < 0.01))
            if frac > 0.5 and "ND401" not in out:
                out["ND401"] = f"{frac:.0%} of the units of `{rec.name}` active on < 1% of samples (> 50%)"
        if act in SATURATING_NAMES and rec.unit_saturated is not None and len(rec.unit_saturated):
            frac = float(np.mean(np.asarray(rec.unit_saturated, dtype=float)))
            if frac > 0.5 and "ND402" not in out:
                out["ND402"] = f"{frac:.0%} of the pre-activations of `{rec.name}` beyond +-5 (> 50%)"
    variances = []
    for rec in snap.weight_layers():
        act = (rec.activation or "").lower()
        if act in RELU_NAMES | SATURATING_NAMES and rec.output is not None and math.isfinite(rec.output.std):
            variances.append((rec.name, float(rec.output.std) ** 2))
    if len(variances) >= 2:
        lo = min(variances, key=lambda t: t[1])
        hi = max(variances, key=lambda t: t[1])
        if lo[1] == 0 or hi[1] / lo[1] > 10:
            ratio = math.inf if lo[1] == 0 else hi[1] / lo[1]
            out["ND203"] = (f"activation-input variance ranges from {_g(lo[1])} (`{lo[0]}`) to {_g(hi[1])} "
                            f"(`{hi[0]}`): ratio {_g(ratio)} > 10")
    return out


DETECTORS: dict[str, Callable[[ModelSnapshot], dict[str, str]]] = {
    "autotrainer": autotrainer,
    "smdebugger": smdebugger,
}
