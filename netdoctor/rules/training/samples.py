"""ND604, ND605, ND608, ND609: rules on the sampled gradient norms and update ratios.

Every ``every`` steps the monitor samples gradient norms and update-to-weight ratios (see
:class:`netdoctor.history.Sample`). ND604 (gradient spikes) and ND605 (update ratio) are in
the published catalogue; ND608/ND609 are the history-aware variants of the one-shot probe
rules ND301/ND302 (vanishing/exploding gradients): they judge a symptom that *appears*
while training and persists for ``patience`` samples spanning at least ``min_steps`` steps.
Their baseline is the first sample (step 0, the model before its first update), so a
problem present from the start is left to the ND3xx rules. The unit-health trends
(ND607, ND610) are in :mod:`netdoctor.rules.training.units`. Registered by importing
:mod:`netdoctor.rules.training`.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from netdoctor.findings import Finding, Report, Severity
from netdoctor.history import History
from netdoctor.rules.format import fmt, name_list, pct
from netdoctor.rules.training.advice import lr_advice

from netdoctor.rules.spec import RuleContext, rule
from netdoctor.rules.training.series import (
    first_span,
    history_of,
    initial_loss,
    loss_level_at,
    loss_peak,
    robust_percentile,
    trailing_median,
)
from netdoctor.snapshot import ModelSnapshot, Need
from netdoctor.verify.plan import FixPlan
from netdoctor.verify.protocol import step


def clip_norm_snippet(ctx: RuleContext, max_norm: float) -> str | None:
    return ctx.snippet(
        torch=f"torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm={max_norm:g})  # after backward()",
        keras=f"optimizer = keras.optimizers.Adam(clipnorm={max_norm:g})",
    )


def healthy_clip_norm(norms: np.ndarray, healthy: np.ndarray, q: float) -> float:
    """A clipping threshold: the ``q``-th percentile of the healthy norms, 2 significant digits."""
    v = robust_percentile(norms[healthy], q)
    if not v > 0:
        v = robust_percentile(norms, 50)
    return float(f"{v:.2g}") if v > 0 else 1.0


def _loss_spikes_at(h: History, at: list[int], factor: float = 3.0, span: int = 20) -> int:
    """How many of the steps ``at`` had a loss at least ``factor`` times the median of the ``span`` steps before."""
    ls, lv = h.finite_loss()
    if not lv.size:
        return 0
    ref = trailing_median(lv, span)
    idx = np.searchsorted(ls, np.asarray(at, dtype=np.int64))
    ok = (idx < ls.size)
    idx = idx[ok]
    hit = (ls[idx] == np.asarray(at)[ok]) & (ref[idx] > 0) & (lv[idx] >= factor * ref[idx])
    return int(hit.sum())


def _clip(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    """Clip at the recommended norm, judged on a minibatch probe (where spikes can happen)."""
    norm = f.evidence.get("max_norm")
    if not norm:
        return "no recommended clipping norm in the finding"
    return FixPlan((step("clip", max_norm=float(norm)),), probe_mode="minibatch")


@rule(code="ND604", name="gradient-spikes", needs={Need.HISTORY}, severity=Severity.WARNING,
      options={"factor": 10.0, "context": 20, "min_history": 5, "min_spikes": 3, "clip_percentile": 95.0},
      fix=_clip)
def gradient_spikes(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Gradient-norm spikes far above the running median.

    ## What it does
    Compares the total gradient norm of every step (the monitor keeps it as a device scalar,
    like the loss; on histories without it, of each sampled step) with the median of the previous
    ``context`` steps (samples) (at least the early-training median, see ``min_history``). A norm at
    least ``factor`` times that reference is a spike. The rule
    fires when at least ``min_spikes`` spikes occurred, and recommends clipping at the
    ``clip_percentile``-th percentile of the non-spike samples (the observed healthy range),
    so ordinary steps are untouched and spikes are cut down to size. The finding lists the
    spike steps; when the loss spiked at the same steps (3x its running median) the
    recommendation says "outlier batches": the data of those steps is the cause.

    ## Why is this bad?
    One spike moves the weights by an order of magnitude more than a normal step and can undo
    many steps of progress (a loss spike) or push ReLUs into the dead region for good.
    Repeated spikes come from rare extreme batches, steep walls of the loss surface (RNNs,
    deep networks without normalization) or a learning rate on the edge of stability.

    ## Example
    ```python
    loss.backward()
    optimizer.step()                       # |grad| 0.3, 0.3, 41.0, 0.3, 0.2, 27.5, ...
    ```

    ## Use instead
    ```python
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.6)   # from the healthy range
    optimizer.step()
    ```

    ## Options
    - ``factor`` (default 10.0): spike size relative to the running median. Healthy
      minibatch noise stays within ~5x the median.
    - ``context`` (default 20): previous samples the running median uses.
    - ``min_history`` (default 5): samples needed before spikes are judged. The reference is
      the larger of the running median and the median of these first samples: near
      convergence the norms shrink by orders of magnitude, and a batch whose gradient is
      back at the early-training scale (measured: up to ~5x it on healthy digits runs) is
      not an instability.
    - ``min_spikes`` (default 3): spikes needed; one spike is an unlucky batch.
    - ``clip_percentile`` (default 95.0): percentile of the healthy norms recommended as
      ``max_norm``: at most ~5% of ordinary steps are clipped, lightly.

    ## References
    - Pascanu, Mikolov, Bengio, "On the difficulty of training recurrent neural networks"
      (2013): gradient-norm clipping.
    - Zhang et al., "Why gradient clipping accelerates training" (ICLR 2020).
    """
    h = history_of(snap)
    if h is None:
        return
    steps, g = h.step_grad_norms()  # every step's norm when the monitor measured it
    per_step = g.size > len(h.samples)
    what = "steps" if per_step else "sampled steps"
    if not per_step:
        steps, g = h.series("grad_norm")
    k, ctxn = int(ctx.opt("min_history")), int(ctx.opt("context"))
    if g.size <= k:
        return
    early = float(np.nanmedian(g[:k]))
    ref = np.fmax(trailing_median(g, ctxn), early)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(ref > 0, g / ref, 0.0)
        spikes = (np.arange(g.size) >= k) & np.isfinite(g) & (ratios >= ctx.opt("factor"))
    ratios = np.where(np.isfinite(ratios) & spikes, ratios, 0.0)
    n = int(spikes.sum())
    if n < int(ctx.opt("min_spikes")):
        return
    clip = healthy_clip_norm(g, ~spikes & np.isfinite(g), ctx.opt("clip_percentile"))
    first = int(np.argmax(spikes))
    worst = int(np.argmax(ratios))
    spike_steps = [int(x) for x in steps[spikes]]
    shown = ", ".join(str(x) for x in spike_steps[:8]) + (", ..." if n > 8 else "")
    outliers = _loss_spikes_at(h, spike_steps)
    if outliers >= max(2, n // 2):  # the loss spiked at the same steps: the batches themselves are outliers
        rec = (f"Outlier batches: the loss spiked too at {outliers} of these {n} steps, so these batches' data or "
               f"targets are far outside the rest (inspect them: the steps are in the finding). Clip the gradient "
               f"norm at {clip:g}, the {ctx.opt('clip_percentile'):g}th percentile of the healthy steps, which cuts "
               f"every spike down to the ordinary range.")
    else:
        rec = (f"Clip the gradient norm at {clip:g}, the {ctx.opt('clip_percentile'):g}th percentile of the healthy "
               "steps: it cuts every spike down to the ordinary range.")
    yield ctx.finding(
        f"{n} of {g.size} {what} had a gradient-norm spike >= {fmt(ctx.opt('factor'))}x the running median "
        f"(steps {shown}; largest {fmt(float(g[worst]))}, {fmt(float(ratios[worst]))}x, at step "
        f"{int(steps[worst])}; limit {int(ctx.opt('min_spikes'))} spikes)",
        recommendation=rec,
        snippet=clip_norm_snippet(ctx, clip),
        evidence={"spikes": n, "samples": int(g.size), "max_norm": clip, "largest": float(g[worst]),
                  "largest_ratio": float(ratios[worst]), "median_norm": float(np.median(g)),
                  "spike_steps": spike_steps[:100], "per_step": per_step, "outlier_batches": outliers >= max(2, n // 2)},
        step=int(steps[first]),
    )


def _faded(h: History, ratio: float = 1e-3) -> bool:
    """Whether some layer's gradient fell below ``ratio`` of its first sampled norm (units died or
    saturated above it): its updates are tiny because no signal arrives, not because the rate is low."""
    _, G = h.matrix("layer_grad")
    if G.shape[0] < 2:
        return False
    g0 = G[0]
    with np.errstate(invalid="ignore"):
        return bool(((G[1:] <= ratio * g0) & (g0 > 0)).any())


@rule(code="ND605", name="update-ratio", needs={Need.HISTORY}, severity=Severity.WARNING,
      options={"low": 1e-4, "high": 0.1, "patience": 5, "min_steps": 100, "lr_floor": 0.1, "low_loss_frac": 0.5})
def update_ratio(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Update-to-weight ratio per step far from ~1e-3 (learning rate too high or too low).

    ## What it does
    On each sampled step measures, per weight layer, ``||W_after - W_before|| / ||W_before||``
    of that optimizer step. The rule fires for a layer whose running median over ``patience``
    consecutive samples stays above ``high`` or below ``low`` for at least ``min_steps``
    steps. Not judged: samples where the learning rate was annealed below ``lr_floor`` times
    its maximum; samples where a layer did not move at all (no gradient: ND607/ND608's
    business); "too low" once the loss fell below ``low_loss_frac`` of its initial value
    (converged models take small steps), in embedding tables (only the rows of the batch
    move), and when a layer's ratio was ever too high or the loss ever doubled (a network
    that blew up and died takes tiny steps because its gradients are gone, not because the
    learning rate is low).

    ## Why is this bad?
    The ratio is the learning rate as the weights feel it. Around 1e-3 each step changes a
    layer by a tenth of a percent. Above 1e-1 every step rewrites a tenth of the layer:
    training is unstable or diverges. Below 1e-4 the weights barely move and training
    crawls (hundreds of epochs for what should take a few).

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)     # ratio ~1e-6
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)      # ratio ~1e-3
    ```

    ## Options
    - ``low`` (default 1e-4): below this the layer learns too slowly (TheDeepChecker's lower
      bound, 10^-4; healthy Adam 1e-3 on digits measures ~1e-3 median).
    - ``high`` (default 0.1): above this each step rewrites too much of the layer
      (TheDeepChecker's and DeepDiagnosis' upper bound).
    - ``patience`` (default 5): samples in the running median.
    - ``min_steps`` (default 100): steps the running median must stay out of range (Adam's
      first few steps are ``lr / |w|`` by construction and do not count).
    - ``lr_floor`` (default 0.1): skip samples whose learning rate is below this fraction of
      the largest seen (the tail of a decay schedule is slow on purpose).
    - ``low_loss_frac`` (default 0.5): "too low" is judged only while the loss is at least
      this fraction of the first step's loss.

    ## References
    - Karpathy, CS231n "Neural Networks Part 3": the ratio of update to weight magnitudes
      should be around 1e-3.
    - Schoop et al., "TheDeepChecker" (2021): log10(update/weight) outside [-4, -1].
    """
    h = history_of(snap)
    if h is None or not h.layers:
        return
    steps, U = h.matrix("layer_update")
    p, min_steps = int(ctx.opt("patience")), int(ctx.opt("min_steps"))
    if steps.size < p:
        return
    lr = np.asarray([s.lr if s.lr is not None else np.nan for s in h.usable_samples if s.layer_update is not None])
    with np.errstate(invalid="ignore"):
        keep = ~(lr < ctx.opt("lr_floor") * np.nanmax(lr)) if np.isfinite(lr).any() else np.ones(steps.size, bool)
        learning = loss_level_at(h, steps) >= ctx.opt("low_loss_frac") * initial_loss(h)
    high: list[tuple[str, int, float]] = []
    low: list[tuple[str, int, float]] = []
    for j, name in enumerate(h.layers):
        sel = keep & np.isfinite(U[:, j]) & (U[:, j] > 0)
        s, u, lrn = steps[sel], U[sel, j], learning[sel]
        if u.size < p:
            continue
        med = np.median(np.lib.stride_tricks.sliding_window_view(u, p), axis=1)  # samples i..i+p-1
        ends, starts = s[p - 1:], s[:med.size]
        i = first_span(med > ctx.opt("high"), ends, 1, min_steps, starts)
        if i is not None:
            high.append((name, int(starts[i]), float(med[i])))
            continue
        kind = h.layer_kinds[j] if j < len(h.layer_kinds) else "other"
        i = first_span((med < ctx.opt("low")) & lrn[p - 1:], ends, 1, min_steps, starts)
        if i is not None and kind != "embedding" and not (med > ctx.opt("high")).any():
            low.append((name, int(starts[i]), float(med[i])))
    if high or loss_peak(h) >= 2 * initial_loss(h) or _faded(h):
        low = []  # the step size was too large at some point: tiny updates now are a symptom, not the cause
    for group, word, limit in ((high, "above", "high"), (low, "below", "low")):
        if not group:
            continue
        step = min(x[1] for x in group)
        worst = max(group, key=lambda x: x[2]) if word == "above" else min(group, key=lambda x: x[2])
        factor = 1e-3 / worst[2]  # the ratio scales with the learning rate; aim for ~1e-3
        adv = lr_advice(ctx, h, step, factor)
        yield ctx.finding(
            f"update-to-weight ratio {word} {fmt(ctx.opt(limit))} for {len(group)} layer(s) "
            f"({name_list([g[0] for g in group])}): median {fmt(worst[2])} in `{worst[0]}` over {p} consecutive "
            f"samples from step {step}, for {min_steps}+ steps (healthy ~1e-3)",
            layer=worst[0] if len(group) == 1 else None,
            recommendation=adv.text,
            snippet=adv.snippet,
            evidence={"layers": {g[0]: g[2] for g in group}, "limit": ctx.opt(limit), **adv.evidence()},
            step=step,
        )


@rule(code="ND608", name="fading-gradients", needs={Need.HISTORY}, severity=Severity.WARNING,
      options={"ratio": 1e-3, "loss_frac": 0.5, "patience": 3, "min_steps": 100})
def fading_gradients(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A layer's gradient vanishes during training while the loss is still high.

    ## What it does
    Per weight layer, compares the gradient norm of each sample with the first sample's
    (the untrained model). The rule fires for a layer whose gradient fell below ``ratio``
    times its initial norm, while the loss was still at least ``loss_frac`` of the first
    step's loss, for ``patience`` consecutive samples.

    ## Why is this bad?
    Gradients shrink when the loss does: that is convergence. A gradient that vanishes while
    the loss is still high means no learning signal reaches the layer any more: the units
    above it died (ND607) or saturated (ND610), or the model collapsed to a constant output.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0)   # layer 2 dies at step 30;
                                                              # fc0's gradient is 0 from then on
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    ```

    ## Options
    - ``ratio`` (default 1e-3): fraction of the initial gradient norm below which the gradient
      counts as vanished (AUTOTRAINER's vanishing ratio is 1e-3).
    - ``loss_frac`` (default 0.5): only while the loss is at least this fraction of its
      initial value (near convergence small gradients are expected).
    - ``patience`` (default 3): consecutive samples...
    - ``min_steps`` (default 100): ...spanning at least this many steps.

    ## References
    - Hochreiter, "The vanishing gradient problem during learning recurrent neural nets"
      (1998).
    - Zhang et al., "AUTOTRAINER" (ICSE 2021).
    """
    h = history_of(snap)
    if h is None:
        return
    steps, G = h.matrix("layer_grad")
    init = initial_loss(h)
    p, min_steps = int(ctx.opt("patience")), int(ctx.opt("min_steps"))
    if steps.size < p + 1 or not init > 0:
        return
    high_loss = loss_level_at(h, steps) >= ctx.opt("loss_frac") * init
    hits = []
    for j, name in enumerate(h.layers):
        g0 = G[0, j]
        if np.isfinite(g0) and g0 > 0:
            i = first_span(high_loss & (G[:, j] <= ctx.opt("ratio") * g0), steps, p, min_steps)
            if i is not None:
                hits.append((name, int(steps[i]), float(g0), float(G[i, j])))
    if not hits:
        return
    name, step, g0, g = min(hits, key=lambda x: x[1])
    yield ctx.finding(
        f"the gradient of {len(hits)} layer(s) ({name_list([x[0] for x in hits])}) vanished while the loss is still "
        f"at least {pct(ctx.opt('loss_frac'))} of its initial {fmt(init, 3)}: `{name}` fell from {fmt(g0)} at the "
        f"start to {fmt(g)} at step {step} (limit {fmt(ctx.opt('ratio'))}x its initial norm, for {p}+ samples "
        f"and {min_steps}+ steps)",
        layer=name if len(hits) == 1 else None,
        recommendation="Find what blocks the gradient above these layers (dead or saturated units, ND607/ND610); "
                       + (adv := lr_advice(ctx, h, step, 0.1)).text[0].lower() + adv.text[1:],
        snippet=adv.snippet,
        evidence={"layers": {x[0]: {"initial": x[2], "at_step": x[3], "step": x[1]} for x in hits},
                  "initial_loss": init},
        step=step,
    )


@rule(code="ND609", name="growing-gradients", needs={Need.HISTORY}, severity=Severity.WARNING,
      options={"factor": 100.0, "patience": 3, "min_steps": 100, "clip_percentile": 95.0})
def growing_gradients(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The gradient norm grows far above its initial level and stays there.

    ## What it does
    Compares the total gradient norm of each sample with the first sample's (the untrained
    model). The rule fires when it is at least ``factor`` times larger for ``patience``
    consecutive samples, and recommends clipping at the ``clip_percentile``-th percentile of
    the samples below that level.

    ## Why is this bad?
    Sustained gradient growth (unlike a single spike, ND604) means training has entered a
    region of steep curvature and the steps are getting larger: the classic road to a
    diverging loss (ND602) and NaN (ND601). Common in RNNs and deep networks without
    normalization, and with learning rates at the edge of stability.

    ## Example
    ```python
    nn.RNN(64, 64, num_layers=3)            # |grad| 0.5 -> 80 -> 300 over a few hundred steps
    ```

    ## Use instead
    ```python
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # after backward()
    ```

    ## Options
    - ``factor`` (default 100.0): growth over the initial norm that counts (two orders of
      magnitude; healthy runs stay within ~10x).
    - ``patience`` (default 3): consecutive samples...
    - ``min_steps`` (default 100): ...spanning at least this many steps.
    - ``clip_percentile`` (default 95.0): percentile of the non-grown norms recommended as
      ``max_norm``.

    ## References
    - Pascanu, Mikolov, Bengio, "On the difficulty of training recurrent neural networks" (2013).
    - TheDeepChecker: gradients doubling over 5 checks.
    """
    h = history_of(snap)
    if h is None:
        return
    steps, g = h.series("grad_norm")
    p, min_steps = int(ctx.opt("patience")), int(ctx.opt("min_steps"))
    if g.size < p + 1 or not (np.isfinite(g[0]) and g[0] > 0):
        return
    grown = g >= ctx.opt("factor") * g[0]
    i = first_span(grown, steps, p, min_steps)
    if i is None:
        return
    clip = healthy_clip_norm(g, ~grown, ctx.opt("clip_percentile"))
    yield ctx.finding(
        f"the gradient norm grew from {fmt(float(g[0]))} at the start to {fmt(float(g[i]))} at step {int(steps[i])} "
        f"({fmt(float(g[i] / g[0]))}x, limit {fmt(ctx.opt('factor'))}x) and stayed there for {p}+ samples and {min_steps}+ steps",
        recommendation=f"Clip the gradient norm at {clip:g} (the {ctx.opt('clip_percentile'):g}th percentile "
                       "before the growth) and lower the learning rate.",
        snippet=clip_norm_snippet(ctx, clip),
        evidence={"initial_grad_norm": float(g[0]), "grad_norm": float(g[i]), "max_norm": clip},
        step=int(steps[i]),
    )


