"""ND601, ND602, ND603, ND606: the rules on the training loss curve.

Each reads the loss of every step the monitor recorded (``History.finite_loss``) in windows of
steps, and fires only on a symptom that persisted, naming the step where it started.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from netdoctor.findings import Finding, Severity
from netdoctor.rules.format import fmt, pct
from netdoctor.rules.training.advice import lr_advice
from netdoctor.rules.spec import RuleContext, rule
from netdoctor.rules.training.series import (
    first_run,
    history_of,
    initial_loss,
    loss_peak,
    loss_windows,
    sustained_best,
    trailing_median,
)
from netdoctor.snapshot import ModelSnapshot, Need


@rule(code="ND601", name="nonfinite-loss", needs={Need.HISTORY}, severity=Severity.ERROR,
      options={"recovered_max_frac": 0.01})
def nonfinite_loss(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The training loss became NaN or Inf.

    ## What it does
    Watches the loss of every step (recorded without a device sync; synced in blocks on
    sampled steps) and reports the first step whose loss was NaN or Inf, how many steps were
    non-finite, and the last finite loss before it. The step is exact whatever ``every`` is.

    ## Why is this bad?
    A NaN loss backpropagates NaN gradients, the optimizer writes NaN into the weights, and
    every later step is wasted: the run cannot recover. Typical causes: a NaN/Inf in a batch of
    data, ``log(0)`` or division by zero in a hand-written loss, a learning rate so high that
    activations overflow, fp16 overflow without loss scaling.

    ## Example
    ```python
    loss = -(y * torch.log(torch.softmax(logits, 1))).sum(1).mean()   # log(0) -> -inf -> NaN
    ```

    ## Use instead
    ```python
    loss = torch.nn.functional.cross_entropy(logits, y)  # log-softmax, numerically stable
    assert torch.isfinite(x).all(), "NaN/Inf in the batch"  # check the data of that step
    ```

    ## Options
    - ``recovered_max_frac`` (default 0.01): when the loss is finite again at the end of the
      run and at most this fraction of the steps was non-finite, the finding is a warning,
      not an error: dynamic loss scaling (``GradScaler``) and skip-the-bad-batch guards
      recover from rare overflows by design. A loss that stays NaN is always an error.

    ## References
    - PyTorch AMP docs, "Gradient scaling".
    - Zhang et al., "AUTOTRAINER" (ICSE 2021): NaN loss as the terminal symptom of
      exploding gradients.
    """
    h = history_of(snap)
    if h is None or h.first_nonfinite_step is None:
        return
    first = h.first_nonfinite_step
    steps, vals = h.finite_loss()
    before = steps < first
    last = f"; last finite loss {fmt(float(vals[before][-1]), 4)} at step {int(steps[before][-1])}" if before.any() else ""
    frac = h.nonfinite_count / max(h.steps, 1)
    recovered = h.last_loss_finite and frac <= ctx.opt("recovered_max_frac")
    state = "the loss is finite again at the end" if h.last_loss_finite else "the loss is still non-finite"
    yield ctx.finding(
        f"the loss became non-finite (NaN/Inf) at step {first}: {h.nonfinite_count} of {h.steps} steps "
        f"non-finite, {state}{last}",
        recommendation="Check the batch of that step for NaN/Inf, use a numerically stable loss, "
                       "and lower the learning rate or clip gradients if the loss grew before it broke.",
        snippet=ctx.snippet(
            torch="torch.autograd.set_detect_anomaly(True)  # names the op that produced the NaN\n"
                  "assert torch.isfinite(x).all() and torch.isfinite(y).all(), 'bad batch'",
            keras="model.fit(x, y, callbacks=[keras.callbacks.TerminateOnNaN()])\n"
                  "assert np.isfinite(x).all() and np.isfinite(y).all(), 'bad data'",
        ),
        evidence={"first_nonfinite_step": first, "nonfinite_steps": h.nonfinite_count, "steps": h.steps,
                  "recovered": bool(h.last_loss_finite)},
        severity=Severity.WARNING if recovered else None,
        step=first,
    )


@rule(code="ND602", name="diverging-loss", needs={Need.HISTORY}, severity=Severity.ERROR,
      options={"window": 20, "factor": 2.0, "patience": 3, "jump": 100.0, "jump_span": 5, "min_level": 0.1})
def diverging_loss(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The loss grows steadily or jumps by orders of magnitude.

    ## What it does
    Two tests on the finite loss curve. *Growth*: the median loss of a window of ``window``
    steps is at least ``factor`` times the best level held so far, for ``patience``
    consecutive windows. A level is *held* when ``patience`` consecutive window medians stay
    at or below it; the best level is the lowest held level, or the initial loss (median of
    the first 10 steps) if lower, so one lucky window or one easy first batch (batch size 1)
    is never the baseline; the rise must also exceed three standard errors of a window median
    (1.25 x the median within-window spread / sqrt(window)), so heavy-tailed per-step losses
    (batch size 1 regression) do not read as divergence. *Jump*: the median of ``jump_span`` consecutive steps is at least
    ``jump`` times the median of the ``window`` steps before them. Either way the worse level
    must also be at least ``min_level`` times the initial loss, so noise around a
    loss that is already near zero (1e-5 -> 1e-3) is not divergence. The finding names the
    first step of the rise.

    ## Why is this bad?
    A loss that rises for hundreds of steps, or jumps two orders of magnitude, means the
    optimizer overshoots: the learning rate is too high for the curvature it meets, or
    gradients exploded. The next stages are NaN (ND601) or a network whose ReLUs all died
    (ND607) and that sits at chance level for the rest of the run.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)   # lr far above 2 / curvature
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # before optimizer.step()
    ```

    ## Options
    - ``window`` (default 20): steps per window; the median of 20 batches is robust to a
      single bad batch.
    - ``factor`` (default 2.0): sustained level, relative to the best level so far, that
      counts as divergence. Healthy runs' window medians wander by well under 2x.
    - ``patience`` (default 3): consecutive windows the growth must persist (60 steps).
    - ``jump`` (default 100.0): a sudden rise of two orders of magnitude over the preceding
      window; healthy runs never sustain one.
    - ``jump_span`` (default 5): consecutive steps the jumped level must last (one bad batch
      never counts).
    - ``min_level`` (default 0.1): the worse level must be at least this fraction of the
      initial loss (median of the first 10 steps).

    ## References
    - Goodfellow, Bengio, Courville, *Deep Learning* (2016), 8.2 and 11.4.1 (learning rate
      too high: the training loss rises).
    - Smith, "Cyclical Learning Rates" (2017): the LR range test reads the learning rate at
      which the loss starts to climb.
    """
    h = history_of(snap)
    if h is None:
        return
    steps, vals = h.finite_loss()
    init = initial_loss(h)
    if not vals.size or not init > 0:
        return
    floor = ctx.opt("min_level") * init
    hits: list[tuple[int, str, dict]] = []
    win = loss_windows(h, int(ctx.opt("window")))
    if len(win):
        prev_best = sustained_best(win.median, int(ctx.opt("patience")), init)
        # and beyond batch noise: 3 standard errors of a window median above the best level
        se = 1.25 * float(np.median(win.sigma)) / math.sqrt(win.size)
        grown = (win.median >= ctx.opt("factor") * prev_best) & (win.median >= floor) \
            & (win.median - prev_best >= 3 * se)
        i = first_run(grown, int(ctx.opt("patience")))
        if i is not None:
            inside = (steps >= win.start[i]) & (vals >= ctx.opt("factor") * prev_best[i])
            hits.append((int(steps[np.argmax(inside)]), (
                f"the loss rose to {fmt(float(win.median[i]), 3)} (median of steps {int(win.start[i])}-{int(win.end[i])}), "
                f"{fmt(float(win.median[i] / prev_best[i]))}x its best level {fmt(float(prev_best[i]), 3)}, and stayed "
                f"above {fmt(ctx.opt('factor'))}x for {int(ctx.opt('patience'))}+ windows of {win.size} steps"),
                {"level": float(win.median[i]), "best": float(prev_best[i]), "ratio": float(win.median[i] / prev_best[i])}))
    span, w = int(ctx.opt("jump_span")), int(ctx.opt("window"))
    if vals.size > span:
        med = np.median(np.lib.stride_tricks.sliding_window_view(vals, span), axis=1)  # vals[k:k+span]
        ref = trailing_median(vals, w)[:med.size]                                       # vals[k-w:k]
        with np.errstate(invalid="ignore"):
            jumped = (ref > 0) & (med >= ctx.opt("jump") * ref) & (med >= floor)
        if jumped.any():
            k0 = int(np.argmax(jumped))
            before, level = float(ref[k0]), float(med[k0])
            k = k0 + int(np.argmax(vals[k0:k0 + span] >= ctx.opt("jump") * before))  # first step that high
            hits.append((int(steps[k]), (
                f"the loss jumped from {fmt(before, 3)} to {fmt(level, 3)} ({fmt(level / before)}x, "
                f"limit {fmt(ctx.opt('jump'))}x) at step {int(steps[k])} and stayed there for {span}+ steps"),
                {"level": level, "before": before, "ratio": level / before}))
    if not hits:
        return
    step, msg, ev = min(hits, key=lambda x: x[0])
    adv = lr_advice(ctx, h, step, 0.1)
    yield ctx.finding(
        msg,
        recommendation=f"{adv.text} Clip the gradient norm.",
        snippet=adv.snippet,
        evidence={**ev, "initial_loss": init, **adv.evidence()},
        step=step,
    )


@rule(code="ND603", name="stalled-loss", needs={Need.HISTORY}, severity=Severity.WARNING,
      options={"window": 20, "min_delta": 0.01, "patience": 0.5, "min_windows": 5, "max_progress": 0.5})
def stalled_loss(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The loss stopped improving long before the run ends, while still high.

    ## What it does
    Tracks the best window median of the loss (windows of ``window`` steps). An improvement
    counts when it beats the best so far by ``min_delta`` (relative) and by three standard
    errors of a window median (so batch noise never looks like progress). The rule fires when the
    last improvement happened before the final ``patience`` fraction of the run (and at
    least ``min_windows`` windows before its end) *and* the plateau is still at or above
    ``max_progress`` times the initial loss (median of the first 10 steps): the model learned little, then nothing.
    A plateau far below the starting loss is convergence, not a stall, and is not flagged.

    ## Why is this bad?
    Compute spent on a flat loss is wasted. A plateau near the starting loss usually means
    no learning signal reaches the weights: a learning rate far too low (ND605), dead ReLUs
    after an early blow-up (ND607), saturated sigmoid/tanh units (ND610), or labels the
    inputs cannot predict.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-5)   # loss 2.30 -> 2.29 -> 2.29 ...
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ```

    ## Options
    - ``window`` (default 20): steps per window (medians of 20 batches hide batch noise).
    - ``min_delta`` (default 0.01): relative improvement of the best level that counts.
    - ``patience`` (default 0.5): fraction of the run without improvement that counts as stalled.
    - ``min_windows`` (default 5): at least this many windows (100 steps) without improvement.
    - ``max_progress`` (default 0.5): only plateaus at or above this fraction of the initial
      loss are stalls; below it the run made real progress first.

    ## References
    - Prechelt, "Early Stopping - But When?" (1998): progress measured on training strips.
    - Karpathy, "A Recipe for Training Neural Networks" (2019): a flat loss at the initial
      value (e.g. ln(10) = 2.30 for 10 classes) means nothing is being learned.
    """
    h = history_of(snap)
    if h is None:
        return
    win = loss_windows(h, int(ctx.opt("window")))
    init = initial_loss(h)
    n = len(win)
    if n < int(ctx.opt("min_windows")) + 1 or not init > 0:
        return
    # an improvement must beat the best level by min_delta and by 3 standard errors of a window median
    se = 1.25 * float(np.median(win.sigma)) / math.sqrt(win.size)
    best, b = float(win.median[0]), 0
    for i, m in enumerate(win.median.tolist()):
        if m < best - max(ctx.opt("min_delta") * best, 3 * se):
            best, b = m, i
    flat = n - 1 - b
    level = float(np.median(win.median[b:]))
    if flat < max(int(ctx.opt("min_windows")), ctx.opt("patience") * n) or level < ctx.opt("max_progress") * init:
        return
    start = int(win.start[b + 1])
    peak = loss_peak(h)  # of the loss
    blew_up = peak >= 2 * init or level >= 1.5 * best
    adv = lr_advice(ctx, h, start, 0.1 if blew_up else 10.0)
    if blew_up:  # the loss got worse before it went flat: the step size is too large, not too small
        rec = (f"The loss blew up or rose before it went flat: {adv.text[0].lower()}{adv.text[1:]} "
               "(Check ND607 for units that died on the way.)")
    else:
        rec = ("Check the update-to-weight ratio (ND605) and dead or saturated units (ND607/ND610); "
               f"if the learning rate is too low: {adv.text[0].lower()}{adv.text[1:]}")
    yield ctx.finding(
        f"the loss has not improved by {pct(ctx.opt('min_delta'))} since step {start} "
        f"({int(win.end[-1]) - start + 1} of {int(win.end[-1]) + 1} steps, limit {pct(ctx.opt('patience'))} of the run) "
        f"and sits at {fmt(level, 3)}, {pct(level / init)} of the initial loss {fmt(init, 3)} "
        f"(stalls above {pct(ctx.opt('max_progress'))} are flagged)",
        recommendation=rec,
        snippet=adv.snippet,
        evidence={"plateau_level": level, "best_level": best, "initial_loss": init, "since_step": start,
                  "windows_flat": flat, "windows": n, "peak": peak, **adv.evidence()},
        step=start,
    )


@rule(code="ND606", name="oscillating-loss", needs={Need.HISTORY}, severity=Severity.WARNING,
      options={"window": 20, "lag1": -0.5, "min_amplitude": 0.05, "group": 6, "max_efficiency": 0.3,
               "noise_factor": 3.0, "patience": 3})
def oscillating_loss(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The loss oscillates instead of descending.

    ## What it does
    Two patterns, each judged on windows of ``window`` steps and required for ``patience``
    consecutive windows. *Fast*: the loss alternates step to step (lag-1 autocorrelation of
    the detrended losses at most ``lag1``) with a spread of at least ``min_amplitude`` of its
    level; shuffled minibatch noise has autocorrelation near 0. *Slow*: over ``group``
    windows the window medians go up and down (at least half of the moves reverse
    direction), end close to where they began (net change at most ``max_efficiency`` of the
    path travelled), and move ``noise_factor`` times more than batch noise explains, by at
    least 2 x ``min_amplitude`` of the level.

    ## Why is this bad?
    An oscillating loss means the optimizer bounces across a valley instead of going down it:
    the learning rate is above the stable limit for the sharpest direction (for gradient
    descent, ``2 / curvature``), or momentum is too high. The run makes no net progress.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.9, momentum=0.99)
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ```

    ## Options
    - ``window`` (default 20): steps per window.
    - ``lag1`` (default -0.5): autocorrelation at or below which the loss alternates; for 20
      independent batches it exceeds -0.5 with probability ~98%, and 3 windows in a row make
      a false alarm negligible.
    - ``min_amplitude`` (default 0.05): spread relative to the loss level that matters.
    - ``group`` (default 6): windows judged together for the slow pattern.
    - ``max_efficiency`` (default 0.3): net change / path length below which the medians go
      nowhere.
    - ``noise_factor`` (default 3.0): window-to-window moves must exceed batch noise
      (``1.4 sigma / sqrt(window)`` for medians) by this factor.
    - ``patience`` (default 3): consecutive windows the pattern must hold.

    ## References
    - Cohen et al., "Gradient Descent on Neural Networks Typically Occurs at the Edge of
      Stability" (ICLR 2021).
    - AUTOTRAINER flags >= 20% of epochs with a peak-to-trough of 0.03, which also fires on
      noisy but healthy runs; this rule compares the swings with the batch noise.
    """
    h = history_of(snap)
    if h is None:
        return
    win = loss_windows(h, int(ctx.opt("window")))
    n = len(win)
    if n == 0:
        return
    level = np.abs(win.median) + 1e-12
    fast = (win.lag1 <= ctx.opt("lag1")) & (win.sigma >= ctx.opt("min_amplitude") * level)
    slow = np.zeros(n, dtype=bool)
    g = int(ctx.opt("group"))
    if n >= g:  # row r: windows r..r+g-1, judged at window r+g-1
        m = np.lib.stride_tricks.sliding_window_view(win.median, g)
        d = np.diff(m, axis=1)
        path = np.abs(d).sum(axis=1)
        reversals = (np.sign(d[:, 1:]) * np.sign(d[:, :-1]) < 0).sum(axis=1)
        noise = 1.4 * np.median(np.lib.stride_tricks.sliding_window_view(win.sigma, g), axis=1) / math.sqrt(win.size)
        move = path / (g - 1)
        slow[g - 1:] = ((path > 0) & (reversals >= (g - 2) / 2) & (np.abs(m[:, -1] - m[:, 0]) <= ctx.opt("max_efficiency") * path)
                        & (move >= ctx.opt("noise_factor") * noise)
                        & (move >= 2 * ctx.opt("min_amplitude") * np.median(np.abs(m), axis=1)))
    p = int(ctx.opt("patience"))
    found = [(i, kind) for kind, mask in (("fast", fast), ("slow", slow)) if (i := first_run(mask, p)) is not None]
    if not found:
        return
    i, kind = min(found)
    start = int(win.start[i - g + 1]) if kind == "slow" else int(win.start[i])
    if kind == "fast":
        detail = (f"alternates step to step (lag-1 autocorrelation {fmt(float(win.lag1[i]))}, limit {fmt(ctx.opt('lag1'))}; "
                  f"spread {pct(float(win.sigma[i] / level[i]))} of the level)")
    else:
        detail = (f"swings up and down across windows of {win.size} steps without net progress "
                  f"(medians {', '.join(fmt(float(x), 3) for x in win.median[i - g + 1:i + 1])})")
    adv = lr_advice(ctx, h, start, 0.3)
    yield ctx.finding(
        f"the loss oscillates from step {start}: it {detail} for {p}+ consecutive windows",
        recommendation=f"{adv.text} (Or lower the momentum) so the optimizer stops overshooting.",
        snippet=adv.snippet,
        evidence={"pattern": kind, "lag1": float(win.lag1[i]), "window_median": float(win.median[i])},
        step=start,
    )
