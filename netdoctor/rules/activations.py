"""ND4xx: forward activations of the probe batch."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from netdoctor.analysis.graph import fused_activation, is_head, producer_weight_layer
from netdoctor.analysis.init import init_reference
from netdoctor.findings import Finding, Report, Severity
from netdoctor.rules.format import fmt, pct, plural
from netdoctor.rules.snippets import (batchnorm_snippet, keras_ctor, standardize_snippet, torch_ref,
                                      torch_swap_activation)
from netdoctor.rules.spec import RuleContext, rule
from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_CONV,
    KIND_LINEAR,
    ROLE_BIAS,
    LayerRecord,
    ModelSnapshot,
    Need,
    ParamRecord,
)
from netdoctor.verify.plan import FixPlan, norm_step, plain_hidden, reinit
from netdoctor.verify.protocol import step

if TYPE_CHECKING:
    from netdoctor.verify.verdict import Measure

#: Activations whose output is exactly zero on a half-line: a unit can be truly dead.
HARD_ZERO = frozenset({"relu", "relu6"})


def _is_output_activation(snap: ModelSnapshot, rec: LayerRecord) -> bool:
    prod = producer_weight_layer(snap, rec)
    return prod is not None and is_head(snap, prod)


def _observations(rec: LayerRecord, vec: np.ndarray | None, batch_size: int) -> int:
    """Samples x positions behind a per-unit vector (conv channels see every position)."""
    if vec is None or rec.output is None or not len(vec):
        return batch_size
    shape = rec.output.shape
    n = len(vec)
    if len(shape) >= 2 and n in tuple(shape[1:]):
        return max(int(rec.output.size // n), batch_size)
    return batch_size


def _producer(snap: ModelSnapshot, f: Finding) -> LayerRecord | None:
    """The weight layer whose output the finding's activation layer transforms."""
    rec = snap.layer(f.layer) if f.layer else None
    return producer_weight_layer(snap, rec) if rec is not None else None


def _bias(snap: ModelSnapshot, prod: LayerRecord | None) -> ParamRecord | None:
    return prod.param(ROLE_BIAS) if prod is not None and snap.has(Need.WEIGHTS) else None


def _negative(bias: ParamRecord | None) -> bool:
    """Whether every entry of ``bias`` is at most zero and their mean below zero (ND401's dead-bias cause)."""
    return bias is not None and bias.stats.mean < 0 and bias.stats.max <= 0


_BY_HAND = "the recommended change (activation, learning rate or output) needs a decision by hand"


def _zero_negative_biases(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    prod = _producer(snap, f)
    if prod is not None and _negative(_bias(snap, prod)):
        return FixPlan((step("zero_bias", prod.name),))
    return _BY_HAND


def _dead_frac(f: Finding, m: Measure) -> dict[str, Any]:
    r = m.rec(f.layer)
    vec = r.unit_active if r is not None else None
    if vec is None or not len(vec):
        return {}
    return {f"dead_frac[{f.layer}]": float(np.mean(np.asarray(vec, dtype=float) <= 0.0))}


@rule(code="ND401", name="dead-units", needs={Need.ACTIVATIONS}, severity=Severity.WARNING,
      options={"max_dead_frac": 0.5, "min_observations": 16}, fix=_zero_negative_biases, metric=_dead_frac,
      chart={"dead_frac": "max_dead_frac"})
def dead_units(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """ReLU units that output zero for every sample of the batch.

    ## What it does
    For every ReLU/ReLU6 activation, counts the units (features, or channels of a conv output)
    that were never positive on any sample and position of the probe batch, and flags the layer
    when more than ``max_dead_frac`` of its units are dead. Activations that are never exactly
    zero (LeakyReLU, ELU, GELU, SiLU) cannot die and are skipped. The rule stays silent when the
    batch gives fewer than ``min_observations`` samples x positions per unit (a unit that fires
    half the time is silent on 4 samples with probability 1/16), and when the layer's input is
    all zeros (that is a zero-weight or zero-scale upstream, reported by ND201/ND304).

    ## Why is this bad?
    A dead ReLU has zero gradient for every input, so it never comes back: its weights are
    frozen and the layer is effectively narrower. Large learning rates, strongly negative
    biases and unnormalized inputs kill units during training.

    ## Example
    ```python
    nn.init.constant_(model.fc2.bias, -5.0)   # every unit of fc2 starts dead
    ```

    ## Use instead
    ```python
    nn.init.zeros_(model.fc2.bias)
    model.act2 = nn.LeakyReLU(0.01)           # or a lower learning rate, or BatchNorm before the ReLU
    ```

    ## Options
    - ``max_dead_frac`` (default 0.5): the fraction of a layer's units that may be dead. A
      healthy ReLU MLP on digits has 2-7% dead units after training; a learning rate that is
      too high leaves 83-100% dead (SageMaker Debugger uses the same 50% layer limit).
    - ``min_observations`` (default 16): samples x positions per unit below which the rule is
      silent.

    ## References
    - Lu et al., "Dying ReLU and Initialization: Theory and Numerical Examples" (2019).
    - Maas, Hannun, Ng, "Rectifier Nonlinearities Improve Neural Network Acoustic Models" (2013).
    """
    for rec in snap.layers:
        act = (rec.activation or rec.type_name or "").lower()
        if rec.kind != KIND_ACTIVATION or act not in HARD_ZERO or rec.unit_active is None or not len(rec.unit_active):
            continue
        obs = _observations(rec, rec.unit_active, snap.batch_size)
        if obs < ctx.opt("min_observations") or snap.batch_size < 2:
            continue
        if rec.input is not None and rec.input.abs_max == 0.0:
            continue
        ua = np.asarray(rec.unit_active, dtype=float)
        dead = ua <= 0.0
        frac = np.count_nonzero(dead) / dead.size
        if frac <= ctx.opt("max_dead_frac"):
            continue
        prod = producer_weight_layer(snap, rec)
        bias = _bias(snap, prod)
        neg_bias = _negative(bias)
        where = "positions of " if obs > snap.batch_size else ""
        yield ctx.finding(
            f"{pct(frac)} of units in `{rec.name}` never fired on {where}{plural(snap.batch_size, 'sample')} "
            f"({int(dead.sum())} of {len(ua)}; limit {pct(ctx.opt('max_dead_frac'))})",
            layer=rec.name,
            recommendation=(f"Reset the negative biases of `{prod.name}` to zero." if neg_bias and prod else
                            "Use LeakyReLU, lower the learning rate, or put a BatchNorm before the ReLU."),
            snippet=_revive_snippet(ctx, rec, prod, neg_bias),
            evidence={"dead_frac": frac, "dead_units": int(dead.sum()), "units": len(ua), "samples": snap.batch_size,
                      "observations": obs, "mean_active": float(ua.mean()),
                      "bias_mean": None if bias is None else bias.stats.mean},
        )


def _revive_snippet(ctx: RuleContext, rec: LayerRecord, prod: LayerRecord | None, neg_bias: bool) -> str | None:
    leaky = torch_swap_activation(rec, "nn.LeakyReLU(0.01)", "F.leaky_relu(x, 0.01)")
    if prod is None:
        return ctx.snippet(torch=leaky, keras="layers.LeakyReLU(negative_slope=0.01)  # in place of the relu")
    if neg_bias:
        return ctx.snippet(torch=f"nn.init.zeros_({torch_ref(prod.name)}.bias)",
                           keras=keras_ctor(prod, rec.name.startswith(prod.name + "/"), bias_initializer='"zeros"'))
    keras = (f"{keras_ctor(prod, False, kernel_initializer=chr(34) + 'he_normal' + chr(34))},\n"
             "layers.LeakyReLU(negative_slope=0.01),")
    torch = f'nn.init.kaiming_normal_({torch_ref(prod.name)}.weight, nonlinearity="leaky_relu")\n{leaky}'
    return ctx.snippet(torch=torch, keras=keras)


def _standardize_or_normalize(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    prod = _producer(snap, f)
    if prod is not None and prod.entry:
        return FixPlan((step("standardize"),))
    if prod is not None and f.severity > f.severity.INFO:
        return FixPlan((reinit(snap, prod.name), norm_step(snap, prod.name)))
    return _BY_HAND


def _saturated_frac(f: Finding, m: Measure) -> dict[str, Any]:
    r = m.rec(f.layer)
    vec = r.unit_saturated if r is not None else None
    if vec is None or not len(vec):
        return {}
    return {f"saturated_frac[{f.layer}]": float(np.mean(np.asarray(vec, dtype=float) > 0.5))}


@rule(code="ND402", name="saturated-activations", needs={Need.ACTIVATIONS}, severity=Severity.WARNING,
      options={"unit_frac": 0.5, "max_saturated_frac": 0.5, "min_observations": 16},
      fix=_standardize_or_normalize, metric=_saturated_frac, chart={"saturated_frac": "max_saturated_frac"})
def saturated_activations(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Sigmoid/tanh units pinned at their asymptotes for most samples.

    ## What it does
    A unit counts as saturated when its pre-activation magnitude exceeds the probe's
    ``saturation_preact`` (5: ``tanh`` within 1e-4 of ±1, ``sigmoid`` beyond 0.993) on more than
    ``unit_frac`` of the samples. The layer is flagged when more than ``max_saturated_frac`` of
    its units are saturated. The sigmoid/softmax that produces the model output is reported at
    info level only: a confident output is what training aims for, and logit-based losses
    cancel its derivative.

    ## Why is this bad?
    The derivative of a saturated sigmoid/tanh is ~0 (sigmoid'(5) = 0.0066, tanh'(5) = 1.8e-4):
    the unit passes no gradient and learns nothing. The usual causes are unnormalized inputs and
    weights too large for the fan-in.

    ## Example
    ```python
    x = np.linspace(-100, 100, 400)[:, None]          # raw inputs
    model = nn.Sequential(nn.Linear(1, 50), nn.Sigmoid(), nn.Linear(50, 1))
    ```

    ## Use instead
    ```python
    x = (x - x.mean()) / x.std()
    nn.init.xavier_uniform_(model[0].weight)
    ```

    ## Options
    - ``unit_frac`` (default 0.5): a unit is saturated when it is beyond ±5 on more than this
      fraction of samples ("most samples").
    - ``max_saturated_frac`` (default 0.5): fraction of a layer's units that may be saturated.
      DeepDiagnosis' 50% of inputs beyond ±5 is the same cut-off, applied per unit here so that
      one extreme unit does not decide for the layer.
    - ``min_observations`` (default 16): samples x positions per unit below which the rule is
      silent.

    ## References
    - Glorot & Bengio (2010), section 3 (saturation of sigmoid layers).
    - LeCun et al., "Efficient BackProp" (1998), section 4.4.
    """
    for rec in snap.layers:
        us = rec.unit_saturated
        if rec.kind != KIND_ACTIVATION or us is None or not len(us):
            continue
        obs = _observations(rec, us, snap.batch_size)
        if obs < ctx.opt("min_observations"):
            continue
        us = np.asarray(us, dtype=float)
        sat = us > ctx.opt("unit_frac")
        frac = float(sat.mean())
        if frac <= ctx.opt("max_saturated_frac"):
            continue
        output = _is_output_activation(snap, rec)
        prod = producer_weight_layer(snap, rec)
        act = rec.activation or rec.type_name
        entry = prod is not None and prod.entry
        if entry:
            rec_txt = f"Standardize the inputs of `{prod.name}`; large inputs push its {act} units into saturation."
        else:
            rec_txt = f"Use Glorot initialization and a BatchNorm before the {act}, or switch the hidden layers to ReLU."
        yield ctx.finding(
            f"{pct(frac)} of units in `{rec.name}` ({act}) are saturated (|pre-activation| > 5 on more than "
            f"{pct(ctx.opt('unit_frac'))} of {plural(snap.batch_size, 'sample')}; limit {pct(ctx.opt('max_saturated_frac'))} "
            "of units)" + ("; it produces the model output, where confident predictions are expected" if output else ""),
            layer=rec.name,
            severity=Severity.INFO if output else None,
            recommendation=rec_txt,
            snippet=None if prod is None else (
                standardize_snippet(ctx, prod, prod.input) if entry and prod.input is not None
                else batchnorm_snippet(ctx, prod, act=act)),
            evidence={"saturated_frac": frac, "saturated_units": int(sat.sum()), "units": len(us),
                      "mean_saturation": float(us.mean()), "samples": snap.batch_size, "output_activation": output},
        )


def _segments(snap: ModelSnapshot) -> list[list[LayerRecord]]:
    """Runs of consecutive dense/conv layers (execution order) not separated by any other kind of
    re-scaling layer: normalization, recurrent, attention and embedding layers start a new run."""
    runs: list[list[LayerRecord]] = [[]]
    for rec in snap.layers:
        if rec.kind in (KIND_LINEAR, KIND_CONV):
            if rec.executed and rec.output is not None and not is_head(snap, rec):
                runs[-1].append(rec)
        elif rec.is_norm or rec.is_weight_layer or rec.kind == "preprocess":
            runs.append([])
    return [r for r in runs if r]


def _reinit_run(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    """Re-initialize the drifting run; normalize its plain layers if that is not enough."""
    names = [n for n in f.evidence.get("rms", {}) if snap.layer(n) is not None] or [f.layer]
    norm = plain_hidden(snap, names)
    return FixPlan(tuple(reinit(snap, n) for n in names),
                   fallbacks=(FixPlan(tuple(norm_step(snap, n) for n in norm)),) if norm else ())


def _rms_change(f: Finding, m: Measure) -> dict[str, Any]:
    recs = [m.rec(n) for n in f.evidence.get("rms", {})]
    rms = [r.output.rms for r in recs if r is not None and r.output is not None]
    return {"activation rms last/first": rms[-1] / rms[0]} if len(rms) >= 2 and rms[0] > 0 else {}


@rule(code="ND403", name="signal-drift", needs={Need.ACTIVATIONS}, severity=Severity.WARNING,
      options={"max_change": 100.0, "min_layers": 4, "min_fit": 0.6}, fix=_reinit_run, metric=_rms_change)
def signal_drift(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Activation scale shrinking or growing geometrically with depth.

    ## What it does
    Takes the RMS of the output of every dense/conv layer in a run of consecutive layers that
    no normalization layer separates (BatchNorm/LayerNorm reset the scale, and so start a new
    run; recurrent, attention and embedding layers too), fits ``log10(RMS)`` against depth and
    flags a run of at least ``min_layers`` layers whose fitted change from first to last layer
    exceeds ``max_change`` in either direction with a good fit (a steady geometric trend, not
    one odd layer). The head is left out (its scale is the logits'). Residual networks are
    skipped: their activations grow like the square root of depth by design.

    ## Why is this bad?
    A signal that shrinks by 0.15x per layer is 1e-8 of its size after ten layers: the output
    no longer depends on the input and gradients vanish with it; one that grows 2x per layer
    overflows sigmoid/tanh and then the float range.

    ## Example
    ```python
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.05, 0.05)   # 10 narrow ReLU layers: 0.15x per layer
    ```

    ## Use instead
    ```python
    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # or BatchNorm between the layers
    ```

    ## Options
    - ``max_change`` (default 100.0): fitted total change allowed across a run. He/ReLU and
      Glorot/tanh stacks stay within 2x over ten layers and PyTorch's default within 8x (its
      biases keep a floor); ``U(±0.05)`` shrinks 1e-12 and ``2x He`` grows 400x.
    - ``min_layers`` (default 4): shortest run judged.
    - ``min_fit`` (default 0.6): minimum R^2 of the log-linear fit (a geometric trend).

    ## References
    - He et al., "Delving Deep into Rectifiers" (2015), section 2.2.
    - Mishkin & Matas, "All you need is a good init" (2016): layer-wise output variance.
    """
    if snap.residual is True:
        return
    for run in _segments(snap):
        if len(run) < ctx.opt("min_layers"):
            continue
        rms = np.asarray([r.output.rms for r in run], dtype=float)
        if not np.all(np.isfinite(rms)) or np.any(rms <= 0):
            continue
        y = np.log10(rms)
        x = np.arange(len(y), dtype=float)
        slope, icpt = np.polyfit(x, y, 1)
        resid = y - (slope * x + icpt)
        ss = float(np.sum((y - y.mean()) ** 2))
        r2 = 1.0 - float(np.sum(resid ** 2)) / ss if ss > 0 else 0.0
        total = slope * (len(y) - 1)
        if abs(total) < math.log10(ctx.opt("max_change")) or r2 < ctx.opt("min_fit"):
            continue
        factor = 10 ** slope
        way = "shrinks" if slope < 0 else "grows"
        first = run[0]
        name, call, kinit, _ = init_reference(first.activation)
        yield ctx.finding(
            f"activation RMS {way} from {fmt(rms[0])} at `{first.name}` to {fmt(rms[-1])} at `{run[-1].name}`: "
            f"{fmt(factor)}x per layer, {fmt(10 ** total)}x over {plural(len(run), 'layer')} "
            f"(limit {fmt(ctx.opt('max_change'))}x either way)",
            layer=first.name,
            recommendation=f"Initialize the layers with {name} initialization or put a BatchNorm after each of them.",
            snippet=ctx.snippet(
                torch="\n".join(call.format(w=f"{torch_ref(r.name)}.weight") for r in run[:4])
                + ("" if len(run) <= 4 else f"\n# ... and the other {len(run) - 4} layers"),
                keras=",\n".join(keras_ctor(r, fused_activation(snap, r), kernel_initializer=f'"{kinit}"')
                                  for r in run[:4])
                + ("" if len(run) <= 4 else f"\n# ... and the other {len(run) - 4} layers"),
            ),
            evidence={"rms": {r.name: float(v) for r, v in zip(run, rms)}, "per_layer": factor,
                      "total_change": 10 ** total, "r2": r2, "layers": len(run)},
        )
