"""ND3xx: gradients of one probe backward pass.

The measure throughout is the *relative gradient* of each weight layer,
:func:`netdoctor.analysis.health.relative_grad` (the one the reports' grad/weight column shows),
read along the chain of :func:`netdoctor.analysis.gradflow.gradient_chain`. Embedding tables are
left out: only the rows of the batch's tokens get a gradient. Each rule is preceded by its fix
and its verification metric; ND304's causes are in :mod:`netdoctor.rules._zero_grad`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterator

from netdoctor.analysis.gradflow import (
    GradRow,
    VanishingCause,
    gradient_chain,
    summed_batch,
    time_growth,
    vanishing_cause,
)
from netdoctor.analysis.health import relative_grad
from netdoctor.analysis.graph import fused_activation, is_head, norm_after
from netdoctor.analysis.init import far_too_small, init_reference, variance_ratio
from netdoctor.findings import Finding, Report, Severity
from netdoctor.rules._zero_grad import zero_grad_causes
from netdoctor.rules.format import fmt, name_list, nice_floor, pct, plural
from netdoctor.rules.snippets import batchnorm_snippet, keras_ctor, torch_ref
from netdoctor.rules.spec import RuleContext, rule
from netdoctor.snapshot import KIND_RNN, ROLE_RECURRENT, ROLE_WEIGHT, ModelSnapshot, Need, ParamRecord
from netdoctor.verify.plan import FixPlan, norm_step, plain_hidden, plan_for, reinit
from netdoctor.verify.protocol import step

if TYPE_CHECKING:
    from netdoctor.verify.verdict import Measure


# -- what every gradient rule reports ---------------------------------------------------------
def _surrogate_loss(snap: ModelSnapshot) -> bool:
    return snap.loss is not None and snap.loss.source == "surrogate"


#: Why the loss-scaled parts of the gradient rules are not judged under a surrogate loss.
SURROGATE_PART_REASON = (
    "the probe loss is a surrogate (MSE against random targets; no targets were given), and this limit "
    "scales with the real loss; give targets (a data function or DataLoader yielding (x, y), --data with y) "
    "or a batch the model's own loss can use")


def _loss_text(snap: ModelSnapshot) -> str:
    if snap.loss is None:
        return ""
    src = {"surrogate": " (surrogate loss: no targets were given)", "default": " (netdoctor's default loss)"}
    return f"; probe loss {snap.loss.name} = {fmt(snap.loss.value)}{src.get(snap.loss.source, '')}"


def _chain_evidence(chain: list[GradRow]) -> dict:
    return {
        "grad_norms": {r.name: r.grad for r in chain},
        "weight_norms": {r.name: r.weight for r in chain},
        "relative_grads": {r.name: r.rel for r in chain},
    }


def _depth_window(chain: list[GradRow]) -> int:
    return max(1, math.ceil(len(chain) / 4))


# -- ND301 ------------------------------------------------------------------------------------
def _vanishing_fix(ctx: RuleContext, snap: ModelSnapshot, chain: list[GradRow],
                   cause: VanishingCause) -> tuple[str, str | None]:
    """Recommendation and snippet for vanishing gradients, from their likely cause."""
    hidden = [r.rec for r in chain[:-1]]
    if cause.kind == "constant":
        return f"Initialize `{cause.layers[0].name}` randomly (see ND201/ND202).", None
    if cause.kind == "saturating":
        return ("Use ReLU with He initialization in the hidden layers, or put a BatchNorm before each "
                f"{cause.layers[0].activation}.", batchnorm_snippet(ctx, hidden[0], act="relu"))
    if cause.kind == "small-init":
        small = cause.layers
        name, call, kinit, _ = init_reference(small[0].activation)
        more = "" if len(small) <= 4 else f"\n# ... and {len(small) - 4} more layers"
        return (f"Initialize the hidden layers with {name} initialization; their weights are too small.",
                ctx.snippet(torch="\n".join(call.format(w=f"{torch_ref(r.name)}.weight") for r in small[:4]) + more,
                            keras=",\n".join(keras_ctor(r, fused_activation(snap, r), kernel_initializer=f'"{kinit}"')
                                             for r in small[:4]) + more))
    return ("Insert BatchNorm after the hidden weight layers or add residual connections.",
            batchnorm_snippet(ctx, hidden[0]))


def _fix_vanishing(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    """The fix for the cause the finding names: re-initialize, or normalize the hidden layers."""
    full = gradient_chain(snap)
    measured = f.evidence.get("relative_grads") or {}
    cause = vanishing_cause(snap, [r for r in full if r.name in measured], f.evidence.get("early_layer"))
    if cause.kind == "constant":
        return FixPlan((reinit(snap, cause.layers[0].name),))
    hidden = [r.rec for r in full[:-1]]
    if cause.kind == "small-init":
        small = [r for r in hidden if far_too_small(r.weight, r.activation)]
        return FixPlan(tuple(reinit(snap, r.name) for r in small or hidden))
    names = plain_hidden(snap, [r.name for r in hidden])
    if not names:
        return "every hidden layer is already normalized; the cause is elsewhere"
    return FixPlan(tuple(norm_step(snap, n) for n in names))


def _first_relative_grad(f: Finding, m: Measure) -> dict[str, Any]:
    """The first layer's relative gradient, and the ratio of the first to the last."""
    chain = gradient_chain(m.snap)
    rel = {m.original_name(c.name): c.rel for c in chain}
    return {f"relative_grad[{m.first}]": rel.get(m.first, 0.0),
            "first/last relative_grad": (chain[0].rel / chain[-1].rel) if len(chain) > 1 else None}


@rule(code="ND301", name="vanishing-gradients", needs={Need.GRADIENTS, Need.WEIGHTS}, severity=Severity.ERROR,
      options={"max_drop": 1e-3, "min_relative": 1e-7, "min_loss": 1e-3}, fix=_fix_vanishing,
      metric=_first_relative_grad, chart={"vanishing_ratio": "min_relative"})
def vanishing_gradients(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Gradients that reach the early layers are negligible.

    ## What it does
    Measures the relative gradient ``|dL/dW| / |W|`` of every weight layer (embeddings
    excluded) and compares the best-fed layer among the first quarter of the network with the
    best-fed layer among the last quarter. It fires when that ratio is below ``max_drop``
    (the gradient decays across depth: the report gives the decay per layer), or when the early
    layers' relative gradient is below ``min_relative`` in absolute terms while the loss is not
    already near zero (every layer is starved, as with tiny initial weights).

    Layers followed by BatchNorm/LayerNorm are left out of the depth comparison: normalization
    makes them scale-invariant, so their gradient measures their weight scale, not the decay
    through depth (and normalization is the cure for vanishing gradients); the absolute test
    keeps them. Depth decay is not judged in residual networks: the skip path carries gradients
    past every block, and the size of the head's gradient there reflects normalization, not
    decay (a BERT has 1e-5 between its query projections and its classifier at initialization,
    and trains fine). Layers whose gradient is exactly zero are left to ND304, which explains
    zero heads and zero-initialized residual scales. A constant weight matrix downstream (ND201/
    ND202) makes the gradient vanish by construction; the finding is then info. With a
    surrogate probe loss (no targets) only the depth decay is judged, as a warning: the
    absolute limit scales with the real loss, so that part is reported as skipped, never passed.

    ## Why is this bad?
    ``dL/dW_l`` is a product of Jacobians ``dz_(j+1)/dz_j``; when many of them are small
    (saturated sigmoids, too-small weights) the early layers stop learning while the last ones
    fit noise.

    ## Example
    ```python
    # 8 sigmoid layers: relative gradient 0.18 at the head, 3.5e-08 at the first layer
    nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(5, 5), nn.Sigmoid())], nn.Linear(5, 1))
    ```

    ## Use instead
    ```python
    nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(5, 5), nn.BatchNorm1d(5), nn.ReLU())], nn.Linear(5, 1))
    ```

    ## Options
    - ``max_drop`` (default 1e-3): smallest acceptable ratio early/late. Healthy plain nets
      measure 0.01-1 (ReLU+He: 0.14, tanh: 0.3, PyTorch default on 8x64 ReLU: 0.014); 8 sigmoid
      layers measure 5e-5. AUTOTRAINER uses the same 1e-3 but on raw first/last norms, which
      residual and normalized networks break.
    - ``min_relative`` (default 1e-7): smallest acceptable relative gradient of the early layers.
      Healthy networks stay above 1e-5; 8 ReLU layers with ``U(±0.05)`` weights measure 6e-11,
      with per-entry gradients (1e-12) far below Adam's epsilon, so not even Adam moves them.
    - ``min_loss`` (default 1e-3): below this loss value a small gradient means "fitted", not
      "vanished", and the absolute test is skipped.

    ## References
    - Hochreiter (1991); Bengio, Simard, Frasconi, "Learning long-term dependencies with
      gradient descent is difficult" (1994).
    - Glorot & Bengio (2010); He et al. (2016) "Deep Residual Learning".
    """
    # layers followed by a normalization are scale-invariant: out of the depth test (their gradient
    # says nothing about decay), kept in the absolute test (a stem conv before BN feeds a ConvNeXt)
    full = gradient_chain(snap)
    chain = [r for r in full if norm_after(snap, r.rec) is None]
    if len(full) < 2:
        return
    loss = snap.loss
    loss_big = loss is None or not math.isfinite(loss.value) or loss.value > ctx.opt("min_loss")
    k = _depth_window(full)
    first = max(full[:k], key=lambda r: r.rel)
    abs_hit = loss_big and first.rel < ctx.opt("min_relative")
    if _surrogate_loss(snap):  # an absolute gradient size means nothing under a stand-in loss
        abs_hit = False
        ctx.skip_part("absolute gradient limit", SURROGATE_PART_REASON)
    depth_hit = False
    if len(chain) >= 2:
        k = _depth_window(chain)
        early = max(chain[:k], key=lambda r: r.rel)
        late = max(chain[-k:], key=lambda r: r.rel)
        drop = early.rel / late.rel if late.rel > 0 else 1.0
        span = max(chain.index(late) - chain.index(early), 1)
        depth_hit = snap.residual is not True and drop < ctx.opt("max_drop")
    if abs_hit or not depth_hit:
        chain = full
        k = _depth_window(chain)
        early, late = first, max(chain[-k:], key=lambda r: r.rel)
        drop = early.rel / late.rel if late.rel > 0 else 1.0
        span = max(chain.index(late) - chain.index(early), 1)
    per_layer = drop ** (1.0 / span) if drop > 0 else 0.0
    if not (depth_hit or abs_hit):
        return
    if depth_hit:
        msg = (f"relative gradient |dL/dW|/|W| falls from {fmt(late.rel)} at `{late.name}` to {fmt(early.rel)} "
               f"at `{early.name}`: {fmt(drop)}x over {plural(span, 'layer')} ({fmt(per_layer)}x per layer; "
               f"limit {fmt(ctx.opt('max_drop'))}x)")
        if chain[0] is not early:
            msg += f"; the first layer `{chain[0].name}` gets {fmt(chain[0].rel)}"
    else:
        msg = (f"relative gradient |dL/dW|/|W| of the early layers is at most {fmt(early.rel)} (`{early.name}`; "
               f"limit {fmt(ctx.opt('min_relative'))}) and {fmt(late.rel)} at the last layers: "
               "no layer can learn from this gradient")
    cause = vanishing_cause(snap, chain, early.name)
    rec_txt, snippet = _vanishing_fix(ctx, snap, chain, cause)
    severity = Severity.WARNING if _surrogate_loss(snap) else None
    if cause.kind == "constant":
        msg += (f"; `{cause.layers[0].name}` downstream has constant weights (see ND201/ND202), which makes the "
                "gradient vanish by construction")
        severity = Severity.INFO
    yield ctx.finding(
        msg + _loss_text(snap),
        layer=early.name,
        severity=severity,
        recommendation=rec_txt,
        snippet=snippet,
        evidence={**_chain_evidence(chain), "drop": drop, "per_layer": per_layer, "span": span,
                  "early_layer": early.name, "late_layer": late.name,
                  "loss": None if loss is None else loss.value, "loss_source": None if loss is None else loss.source},
    )


# -- ND302 ------------------------------------------------------------------------------------
def _fix_exploding(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    """Standardize the inputs (when ND101 fired) and re-initialize the over-scaled layers; clip in the probe."""
    steps = [step("standardize")] if any(g.code == "ND101" for g in report.findings) else []
    large = [n for g in report.findings if g.code == "ND203" and g.evidence.get("direction") == "large"
             for n in (g.evidence.get("layers") or [g.layer])]
    if not large and not steps:
        large = [r.name for r in gradient_chain(snap) if (variance_ratio(r.rec) or 0.0) > 3.0]
    steps += [reinit(snap, n) for n in dict.fromkeys(large)]
    steps.append(step("clip", max_norm=float(f.evidence.get("max_norm") or 1.0)))
    return FixPlan(tuple(steps))


def recurrent_gain(p: ParamRecord) -> float:
    """RMS singular value of a recurrent kernel per gate block: ``|W_hh| / sqrt(gates * hidden)``.

    0.5 for Keras' orthogonal initialization of a ``(hidden, 4 hidden)`` kernel, 0.58 for torch's
    uniform default; the recurrent Jacobian through time scales with it.
    """
    rows = max(p.stats.shape) if p.stats.shape else 1
    return float(p.stats.l2) / math.sqrt(max(rows, 1))


def _recurrent_explosion(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Recurrent layers measured per kernel and through time: a large input-kernel gradient driven by the
    recurrent kernel, or a gradient that grows backward in time (``time_growth``)."""
    max_rel, max_gain, max_time = ctx.opt("max_relative_recurrent"), ctx.opt("max_recurrent_gain"), \
        ctx.opt("max_time_growth")
    for rec in snap.weight_layers(executed_only=True):
        if rec.kind != KIND_RNN:
            continue
        inp, hh = rec.param(ROLE_WEIGHT), rec.param(ROLE_RECURRENT)
        timed = time_growth(rec)
        rel_in = relative_grad(inp) if inp is not None and inp.grad is not None else None
        rel_hh = relative_grad(hh) if hh is not None and hh.grad is not None else None
        gain = recurrent_gain(hh) if hh is not None else None
        kernel_hit = (rel_in is not None and rel_hh is not None and math.isfinite(rel_in) and rel_in > max_rel
                      and gain is not None and gain > max_gain)
        time_hit = timed is not None and timed[0] > max_time
        if not (kernel_hit or time_hit):
            continue
        parts = []
        if kernel_hit:
            parts.append(
                f"`{rec.name}` measured per kernel: the input kernel's relative gradient is {fmt(rel_in)} (limit "
                f"{fmt(max_rel)} for recurrent layers) and the recurrent kernel's is {fmt(rel_hh or 0.0)}, with a "
                f"recurrent gain of {fmt(gain)} (RMS singular value per gate block; healthy inits 0.5-0.58, limit "
                f"{fmt(max_gain)})")
        if timed is not None:
            growth, steps = timed
            lead = f"`{rec.name}`: a" if not kernel_hit else "a"
            parts.append(
                f"{lead} gradient sent into the last of {steps} steps reaches the first step {fmt(growth)}x as large "
                f"(limit {fmt(max_time)}x; healthy initializations shrink it)")
        yield ctx.finding(
            "; ".join(parts) + ": the gradient grows backward in time through the recurrent kernel" + _loss_text(snap),
            layer=rec.name,
            recommendation="Initialize the recurrent kernel orthogonally (gain 1) and clip the global gradient norm.",
            snippet=ctx.snippet(
                torch=(f"for name, p in {torch_ref(rec.name)}.named_parameters():\n"
                       "    if name.startswith('weight_hh'):\n        nn.init.orthogonal_(p)\n"
                       "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)"),
                keras='layers.LSTM(units, recurrent_initializer="orthogonal")\n'
                      "optimizer = keras.optimizers.Adam(global_clipnorm=1.0)"),
            evidence={"relative_grads": {f"{rec.name}[input kernel]": rel_in, f"{rec.name}[recurrent kernel]": rel_hh},
                      "recurrent_gain": gain, "time_growth": timed[0] if timed else None,
                      "time_steps": timed[1] if timed else None, "layers_over_limit": [rec.name], "recurrent": True})


def _largest_relative_grad(f: Finding, m: Measure) -> dict[str, Any]:
    """The largest relative gradient and the global gradient norm."""
    chain = gradient_chain(m.snap)
    rel = {m.original_name(c.name): c.rel for c in chain}
    return {"max relative_grad": max(rel.values(), default=None),
            "global grad_norm": math.sqrt(sum(c.grad ** 2 for c in chain))}


@rule(code="ND302", name="exploding-gradients", needs={Need.GRADIENTS, Need.WEIGHTS}, severity=Severity.ERROR,
      options={"max_relative": 10.0, "warn_relative": 3.0, "max_relative_head": 100.0, "max_growth": 100.0,
               "batch_reference": 32, "max_relative_recurrent": 0.05, "max_recurrent_gain": 2.0,
               "max_time_growth": 10.0},
      fix=_fix_exploding, metric=_largest_relative_grad, chart={"exploding_ratio": "max_relative", "exploding_warn": "warn_relative"})
def exploding_gradients(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Gradient norms that are huge relative to the weights, or grow toward the input.

    ## What it does
    Flags a hidden weight layer whose gradient norm exceeds ``max_relative`` times its weight
    norm (one SGD step at learning rate 0.1 would move the weights by their own size), the head
    when it exceeds ``max_relative_head``, or a plain network whose early layers' relative
    gradient is ``max_growth`` times that of the last layers. A hidden layer between
    ``warn_relative`` and ``max_relative`` is a warning: whether such a gradient explodes
    depends on the learning rate, which the probe does not know (one SGD step at learning rate
    ``1 / ratio`` or more moves the weights by their own size; Adam's step does not scale with
    the gradient). Layers followed by a normalization
    layer are left out: BatchNorm/LayerNorm make them scale-invariant, so their gradient grows as
    their weights shrink without anything compounding through depth (this includes a DenseNet
    conv whose output is concatenated and then batch-normalized: BatchNorm normalizes each
    channel of the concatenation on its own). On a probe batch smaller than
    ``batch_reference`` all limits widen by ``sqrt(batch_reference / batch)``: the gradient
    of a mean over n samples carries sampling noise of size ``1/sqrt(n)``, which dominates at
    initialization (keras.applications at 8 images measure up to 3.8 in an EfficientNet
    squeeze-excitation conv, a DenseNet up to 12 at 8 images and 79 at 4). The head gets a wider limit
    because its gradient scales with the loss itself (an MSE regression on targets of scale 2
    puts the head at 9x), while hidden layers show the amplification through depth. The finding
    gives a concrete clipping threshold: the global norm the gradient would have if no layer
    exceeded its own weight norm, capped at a tenth of the measured global norm, rounded down
    to 1, 2 or 5 times a power of ten. With a surrogate probe loss (no targets) only the growth
    toward the input is judged, as a warning: the gradient-to-weight limits scale with the real
    loss, so that part is reported as skipped, never passed.

    ## Why is this bad?
    Large Jacobian factors multiply across layers; one update then throws the weights far from
    where they were, the loss jumps, and within a few steps it overflows to Inf/NaN.

    ## Example
    ```python
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)     # on 256-wide layers
    ```

    ## Use instead
    ```python
    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)  # before optimizer.step()
    ```

    ## Options
    - ``max_relative`` (default 10.0): the error limit for hidden layers. Healthy networks at
      initialization measure at most 1.1 in hidden layers on full batches (the lecture's Keras
      regression; SELU stacks 0.56; ResNet, BERT, Transformer, LSTM, MobileNet stay below 0.3);
      exploding ones measure 16-22 (256-wide ``N(0, 1)`` ReLU layers: one SGD step at lr 0.01
      multiplies the loss by 11-18), 38-225 (raw 0-255 pixels), 82-286 (10 ReLU layers at twice
      the He std).
    - ``warn_relative`` (default 3.0): the warning limit for hidden layers. SO 48385830's
      ``N(0, 1)`` on 64->30->10 without activations measures 4.4-4.5 (one SGD step at the post's
      learning rate 3 multiplies the loss by 1e8, at 0.1 by 4.6); a CNN with ``N(0, 0.25)``
      kernels 5.2-5.7 (at lr 0.1: 2.8x).
    - ``max_relative_head`` (default 100.0): limit for the last layer, whose gradient carries
      the loss scale (MSE on unscaled targets); classification heads stay below 0.5.
    - ``max_growth`` (default 100.0): largest acceptable ratio of early to late relative
      gradient in networks without residual connections; healthy ones measure below 1.
    - ``max_relative_recurrent`` (default 0.05) and ``max_recurrent_gain`` (default 2.0): a
      recurrent layer is measured per kernel, input and recurrent, instead of as a whole (which
      averages the fault away): it is flagged when its input kernel's relative gradient exceeds
      0.05 (healthy LSTM/GRU layers of the bench measure 0.0005-0.023 at initialization) *and*
      its recurrent kernel's gain, the RMS singular value per gate block, exceeds 2 (Keras'
      orthogonal init 0.5, torch's uniform default 0.58); an LSTM whose recurrent kernel is
      scaled x5 measures 0.09 (torch, 50 steps) to 0.44 (Keras) at gain 2.5-2.9.
    - ``max_time_growth`` (default 10.0): the adapter replays each recurrent layer (torch: a
      bidirectional one per layer and direction; Keras: unidirectional layers)
      one step at a time on its probe input and sends a unit gradient into the last hidden state;
      flagged when the gradient reaching the first step's state is more than this many times as
      large. Healthy initializations shrink it (torch's default LSTM/GRU ~1e-11 over 50 steps,
      a 2-layer LSTM language model 1e-7 over 35); a tanh RNN with its recurrent kernel x3 grows
      it ~200x, an LSTM x5 ~4x (its saturated gates cap the growth; the per-kernel test above
      catches it). The growth is reported in every recurrent ND302 finding.
    - ``batch_reference`` (default 32): probe batches smaller than this widen the limits by
      ``sqrt(batch_reference / batch)`` (2x at 8 samples); a typical training mini-batch, so the
      widening removes only the noise training itself would not see.

    ## References
    - Pascanu, Mikolov, Bengio, "On the difficulty of training recurrent neural networks"
      (2013): gradient clipping.
    """
    flagged = set()
    for f in _recurrent_explosion(snap, ctx):
        flagged.add(f.layer)
        yield f
    # A layer followed by a normalization is scale-invariant: its gradient is orthogonal to W and
    # proportional to 1/|W|, so a large ratio there means "small weights", not amplification through
    # depth (Keras' glorot-initialized depthwise kernels before BN measure 150x and train fine).
    # A recurrent layer reported above per kernel is not reported again as a whole.
    chain = [r for r in gradient_chain(snap) if norm_after(snap, r.rec) is None and r.name not in flagged]
    if not chain:
        return
    head = chain[-1] if is_head(snap, chain[-1].rec) else None
    # sampling noise of a mean gradient over n samples scales as 1/sqrt(n); below a training-size batch
    # the probe sees more of it than training would
    widen = math.sqrt(max(1.0, float(ctx.opt("batch_reference")) / snap.batch_size)) if snap.batch_size > 0 else 1.0
    at_n = f" at {snap.batch_size} samples" if widen > 1 else ""

    # a loss summed over the batch sends batch-size times a mean's gradient; the limits are a mean's (ND510 says why)
    summed = summed_batch(snap)
    scale = float(summed or 1)

    def limit(r: GradRow) -> float:
        return (ctx.opt("max_relative_head") if r is head else ctx.opt("max_relative")) * widen * scale

    worst = max(chain, key=lambda r: r.rel / limit(r))
    k = _depth_window(chain)
    early = max(chain[:k], key=lambda r: r.rel)
    late = max(chain[-k:], key=lambda r: r.rel)
    growth = early.rel / late.rel if late.rel > 0 and len(chain) >= 3 else 0.0
    abs_hit = worst.rel > limit(worst)
    growth_hit = snap.residual is not True and growth > ctx.opt("max_growth")
    hidden = [r for r in chain if r is not head]
    warn_limit = ctx.opt("warn_relative") * widen * scale
    band = not (abs_hit or growth_hit) and any(r.rel > warn_limit for r in hidden)
    if _surrogate_loss(snap):  # gradient-to-weight limits scale with the loss; only the depth ratio is judged
        abs_hit = band = False
        ctx.skip_part("gradient-to-weight limits", SURROGATE_PART_REASON)
    if not (abs_hit or growth_hit or band):
        return
    if band:
        worst = max(hidden, key=lambda r: r.rel)
    global_norm = math.sqrt(sum(r.grad ** 2 for r in chain))
    healthy = math.sqrt(sum(min(r.grad, r.ref_norm) ** 2 for r in chain))
    max_norm = nice_floor(min(global_norm / 10.0, healthy))
    per_var = nice_floor(max(min(r.grad, r.ref_norm) for r in chain))
    over = [r.name for r in (hidden if band else chain) if r.rel > (warn_limit if band else limit(r))]
    if abs_hit or band:
        lim = (f"warning above {fmt(warn_limit)}x, error above {fmt(limit(worst))}x{at_n}" if band else
               f"limit {fmt(limit(worst))}x{' for the head' if worst is head else ''}{at_n}")
        msg = (f"gradient norm of `{worst.name}` is {fmt(worst.rel)}x its weight norm (|dL/dW| {fmt(worst.grad)} vs "
               f"|W| {fmt(worst.weight)}; {lim}); {plural(len(over), 'layer')} over the limit, global gradient "
               f"norm {fmt(global_norm)}")
        if band:
            msg += (f"; one plain SGD step at learning rate {fmt(1.0 / worst.rel)} or more moves its weights by their "
                    "own size")
        if summed:
            msg += (f"; the loss is summed over the batch (ND510), so the limits are {summed}x a mean's: "
                    f"{fmt(worst.rel / summed)}x at a mean's scale")
    else:
        msg = (f"relative gradient grows {fmt(growth)}x from `{late.name}` ({fmt(late.rel)}) to `{early.name}` "
               f"({fmt(early.rel)}) toward the input (limit {fmt(ctx.opt('max_growth'))}x); "
               f"global gradient norm {fmt(global_norm)}")
    yield ctx.finding(
        msg + _loss_text(snap),
        layer=worst.name if abs_hit or band else early.name,
        severity=Severity.WARNING if _surrogate_loss(snap) or band else None,
        recommendation=(f"Clip the global gradient norm at {max_norm:g} and check the initialization scale "
                        "and the input/target scale" + (" and the learning rate." if band else ".")),
        snippet=ctx.snippet(
            torch=("loss.backward()\n"
                   f"torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm={max_norm:g})\n"
                   "optimizer.step()"),
            keras=(f"optimizer = keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm={max_norm:g})\n"
                   f"# or clipnorm={per_var:g} to clip each variable separately"),
        ),
        evidence={**_chain_evidence(chain), "global_norm": global_norm, "max_norm": max_norm,
                  "clipnorm_per_variable": per_var, "growth": growth, "layers_over_limit": over,
                  "limit_widening": widen, "warning_band": band},
    )


# -- ND303 ------------------------------------------------------------------------------------
def _nonfinite_origin(snap: ModelSnapshot) -> tuple[str | None, str]:
    """Where NaN/Inf first appears: (layer or None, explanation)."""
    if snap.data is not None:
        bad = [n for n, st in snap.data.inputs.items() if st.frac_nonfinite > 0]
        if bad:
            return None, f"input {name_list(bad)} already contains NaN/Inf (see ND102)"
    for rec in snap.layers if snap.has(Need.WEIGHTS) else ():
        if any(p.stats.frac_nonfinite > 0 for p in rec.params):
            return rec.name, f"the weights of `{rec.name}` contain NaN/Inf (see ND204)"
    if not snap.has(Need.ACTIVATIONS):
        return None, "run with activation statistics (all rules selected) to locate its origin"
    for rec in snap.layers:
        out = rec.output
        if out is not None and out.frac_nonfinite > 0 and (rec.input is None or rec.input.frac_nonfinite == 0):
            return rec.name, (f"the first non-finite value appears in the output of `{rec.name}` "
                              f"({pct(out.frac_nonfinite)} of entries; its input is finite)")
    out = snap.output
    if out is not None and out.stats.frac_nonfinite == 0:
        if snap.loss is not None and snap.loss.unit_range:
            return None, (f"the model output is finite but spans [{out.stats.min:.3g}, {out.stats.max:.3g}], and the "
                          "loss is finite once the output is clamped into (0, 1): a probability loss (log-loss) on an "
                          "unbounded output makes the NaN (see ND503)")
        if snap.loss is not None and math.isnan(snap.loss.value) and out.stats.min < 0:
            return None, (f"the model output is finite but reaches {out.stats.min:.3g}, so the loss itself makes the "
                          "NaN: the log of a negative output (a probability loss fed with logits?)")
        return None, "the model output is finite, so the loss itself overflows (log(0) in a probability loss?)"
    return None, "its origin could not be located from the forward statistics"


def _fix_nonfinite(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    """Drop the NaN/Inf samples (ND102 fired) or re-initialize the NaN/Inf weights where they start."""
    origin = f.evidence.get("origin")
    if origin is None and any(g.code == "ND102" for g in report.findings):
        return FixPlan((step("drop_rows"),))
    rec = snap.layer(origin) if origin else None
    if rec is not None and any(p.stats.frac_nonfinite > 0 for p in rec.params):
        return FixPlan((step("reset_nonfinite", origin),))
    return ("the first NaN/Inf is produced by a computation inside the model (" + str(f.evidence.get("origin"))
            + "); change that computation by hand")


def _probe_loss(f: Finding, m: Measure) -> dict[str, Any]:
    return {"probe-batch loss": m.snap.loss.value if m.snap.loss is not None else None}


@rule(code="ND303", name="nonfinite-gradients", needs={Need.GRADIENTS}, severity=Severity.ERROR, options={},
      fix=_fix_nonfinite, metric=_probe_loss)
def nonfinite_gradients(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """NaN or Inf in a gradient or in the loss of the probe batch.

    ## What it does
    Checks the probe loss and every parameter gradient for NaN/Inf and points at the origin:
    non-finite input data (ND102), non-finite weights (ND204), or the first layer in execution
    order whose output overflows while its input is finite (``exp`` activations, huge weights).
    One finding summarizes all affected layers. A NaN/Inf loss is an error even when every
    gradient is finite: ``-(y * log(out))`` written by hand on raw logits takes the log of
    negative outputs, the zero entries of the one-hot target multiply those NaNs away in the
    gradient, and the loss that training logs, averages and early-stops on is NaN (the adapters
    compute the loss in the same pass as the gradients, so the value is measured, not missing).

    ## Why is this bad?
    The optimizer writes NaN into every weight the gradient touches; from then on the model
    outputs NaN and cannot recover.

    ## Example
    ```python
    h = torch.exp(model.fc1(x))        # overflows to inf for pre-activations above ~88
    ```

    ## Use instead
    ```python
    h = torch.relu(model.fc1(x))       # bounded growth; or clip, or use log-space losses
    ```

    ## Options
    None: one non-finite gradient entry is already fatal.

    ## References
    - PyTorch ``torch.autograd.detect_anomaly``; Keras ``callbacks.TerminateOnNaN``.
    """
    bad = [(rec, p) for rec, p in snap.iter_params() if p.grad is not None and p.grad.frac_nonfinite > 0]
    loss = snap.loss
    # the adapters compute the loss in the same pass as the gradients, so a NaN value is measured, not unknown
    # a loss that raised on the output is not a NaN: ND503 reports the failure (LossInfo.error)
    loss_bad = loss is not None and not math.isfinite(loss.value) and loss.error is None
    if not bad and not loss_bad:
        return
    layers = list(dict.fromkeys(rec.name for rec, _ in bad))
    origin, why = _nonfinite_origin(snap)
    parts = []
    if loss_bad:
        parts.append(f"the probe loss is {fmt(loss.value)}" + ("" if bad else " while every gradient is finite"))
    if layers:
        parts.append(f"gradients of {plural(len(layers), 'layer')} contain NaN/Inf ({name_list(layers)}; "
                     f"worst {pct(max(p.grad.frac_nonfinite for _, p in bad))} of entries)")
    msg = " and ".join(parts) + f" (limit 0); {why}"
    targets = snap.data.targets if snap.data is not None else None
    in_loss = (not bad and origin is None and snap.output is not None and snap.output.stats.frac_nonfinite == 0
               and (targets is None or targets.frac_nonfinite == 0))  # finite model, finite targets: the loss
    if in_loss:
        rec_txt = ("Compute the loss with the framework's loss on logits (nn.CrossEntropyLoss, from_logits=True) "
                   "instead of taking the log of the model output yourself.")
        snippet = ctx.snippet(
            torch="loss_fn = nn.CrossEntropyLoss()  # logits and class indices; log-softmax inside, never log(<= 0)",
            keras='model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))')
    else:
        rec_txt = "Remove the non-finite values at their origin, then clip gradients to keep them from coming back."
        snippet = ctx.snippet(
            torch=("with torch.autograd.detect_anomaly():  # names the operation that made the first NaN\n"
                   "    loss_fn(model(x), y).backward()\n"
                   "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)"),
            keras=("model.compile(optimizer=keras.optimizers.Adam(global_clipnorm=1.0), loss=model.loss)\n"
                   "model.fit(x, y, callbacks=[keras.callbacks.TerminateOnNaN()])"),
        )
    yield ctx.finding(
        msg,
        layer=origin or (layers[-1] if layers else None),
        recommendation=rec_txt,
        snippet=snippet,
        evidence={"loss": None if loss is None else loss.value, "layers": layers, "origin": origin,
                  "fractions": {f"{rec.name}.{p.name}": p.grad.frac_nonfinite for rec, p in bad}},
    )


# -- ND304 ------------------------------------------------------------------------------------
def _fix_zero_gradient(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    """Re-initialize the zero weights that block the gradient, or revive the dead layer as ND401 does."""
    cause = str(f.evidence.get("cause", ""))
    kind, _, name = cause.partition(":")
    rec = snap.layer(name) if name else None
    if kind in ("zero-weights", "zero-head", "zero-input") and rec is not None and rec.weight is not None \
            and rec.weight.stats.abs_max == 0.0:
        return FixPlan((reinit(snap, name),))
    dead = next((g for g in report.findings if g.code == "ND401" and g.layer == name), None)
    if kind in ("dead", "zero-input") and dead is not None:
        return plan_for(dead, report, snap)  # revive the dead layer the way ND401 recommends
    return f"the cause ({kind or 'unknown'}) is in the model's code or data flow; fix it by hand"


def _grad_norms(f: Finding, m: Measure) -> dict[str, Any]:
    """The weight-gradient norms of the first four layers that got none."""
    return {f"grad_norm[{name}]": m.grad(name) for name in list(f.evidence.get("layers") or [f.layer])[:4]}


@rule(code="ND304", name="no-gradient", needs={Need.GRADIENTS, Need.WEIGHTS}, severity=Severity.WARNING, options={},
      fix=_fix_zero_gradient, metric=_grad_norms)
def no_gradient(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A trainable layer receives exactly zero gradient.

    ## What it does
    Finds trainable weight layers whose weight gradient is exactly zero on the probe batch and
    explains why. Zeros that are there by construction at step 0 are reported at info level
    with their cause, never as a warning: a zero-initialized head (every gradient below it is
    zero until its first update), a zero-initialized BatchNorm scale or layer-scale closing a
    residual branch (``zero_init_residual``: the branch starts as identity), zero weights in
    a downstream layer (reported by ND201), or a softmax over a single output unit (reported
    by ND503). A layer that did not run while parallel copies of it did, each on a different
    share of the batch (the experts of a top-k mixture-of-experts), is reported at info level as
    "not routed on this batch", with how many copies ran and on how many rows, not as unused.
    A layer that ran on the whole batch with a zero gradient while parallel copies of it, fed
    the same input, got one (a mixture-of-experts computed densely, whose 0/1 or top-k mask gave
    these copies weight zero on every sample) is info too, "masked", not a cut graph.
    Everything else is a warning: a layer that is defined but never used in ``forward``, a
    ``.detach()``/``stop_gradient`` in the path, a fully dead ReLU after it, or an all-zero
    normalization gain on the path to the output (no residual branch around it, and the output
    is constant over the batch: a LLaMA-style final RMSNorm with zero gain) -- a zero scale
    that closes a residual branch is deliberate, one on the main path is a fault.

    ## Why is this bad?
    A layer with no gradient never changes: parameters are wasted and, if it was meant to
    learn, the model silently trains without it.

    ## Example
    ```python
    def forward(self, x):
        h = self.encoder(x).detach()   # the encoder never learns
        return self.head(h)
    ```

    ## Use instead
    ```python
    def forward(self, x):
        return self.head(self.encoder(x))  # freeze on purpose with requires_grad_(False)
    ```

    ## Options
    None.

    ## References
    - Goyal et al., "Accurate, Large Minibatch SGD" (2017): zero-initialized residual BN scale.
    """
    groups = zero_grad_causes(snap)
    for cause in groups:
        names = cause.layers
        sev = Severity.INFO if cause.by_construction else None
        head = f"`{names[0]}`" if len(names) == 1 else f"{plural(len(names), 'layer')} ({name_list(names)})"
        verb = "receives" if len(names) == 1 else "receive"
        yield ctx.finding(
            f"{head} {verb} exactly zero gradient (|dL/dW| = 0; limit: > 0): {cause.reason}",
            layer=names[0],
            severity=sev,
            recommendation=cause.recommendation,
            snippet=ctx.snippet(torch=cause.torch, keras=cause.keras),
            evidence={"layers": names, "cause": cause.key, "by_construction": cause.by_construction, **cause.evidence},
        )
