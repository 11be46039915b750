"""ND607, ND610: dead and saturated units that appear during training.

History-aware variants of the one-shot probe rules ND401 (dead units) and ND402 (saturated
activations). The monitor measures, on each sampled step, the fraction of units of each
activation layer that are dead (ReLU family: zero for the whole batch) or saturated
(sigmoid/tanh family: pinned at an asymptote for most of the batch). These rules fire when
that fraction *rises* during training and persists; the baseline is the first sample (the
untrained model), so units dead from initialization are left to ND401/ND402. Registered by
importing :mod:`netdoctor.rules.training`.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from netdoctor.findings import Finding, Severity
from netdoctor.history import DYING_ACTIVATIONS, SATURATING_ACTIVATIONS, History
from netdoctor.rules.format import pct
from netdoctor.rules.spec import RuleContext, rule
from netdoctor.rules.training.series import first_span, history_of
from netdoctor.snapshot import ModelSnapshot, Need


def _unit_trend(h: History, field: str, kinds: frozenset[str], limit: float, rise: float,
                patience: int, min_steps: int, skip_output: bool = False) -> list[tuple[str, int, float, float]]:
    """Activation layers whose ``field`` fraction rose to ``limit`` and stayed: (name, step, value, baseline)."""
    steps, M = h.matrix(field)
    out = []
    if steps.size < patience:
        return out
    for j, (name, act) in enumerate(zip(h.act_layers, h.act_kinds)):
        col = M[:, j]
        ok = np.isfinite(col)
        if act not in kinds or not ok.any():
            continue
        if skip_output and j < len(h.act_output) and h.act_output[j]:
            continue  # the model's output activation: confident predictions saturate it by design
        base = float(col[ok][0])
        i = first_span(ok & (col >= limit) & (col - base >= rise), steps, patience, min_steps)
        if i is not None:
            out.append((name, int(steps[i]), float(np.nanmax(col[i:i + patience])), base))
    return out


def _unit_findings(ctx: RuleContext, hits: list, what: str, verb: str, rec: str, snippet: str | None) -> Iterator[Finding]:
    for name, step, value, base in hits:
        yield ctx.finding(
            f"{pct(value)} of the units of `{name}` {verb} from step {step} on (limit {pct(ctx.opt('limit'))}), "
            f"up from {pct(base)} at the start, for {int(ctx.opt('patience'))}+ consecutive samples "
            f"and {int(ctx.opt('min_steps'))}+ steps",
            layer=name, recommendation=rec, snippet=snippet,
            evidence={f"{what}_frac": value, "baseline": base, "limit": ctx.opt("limit")},
            step=step,
        )


@rule(code="ND607", name="dying-units", needs={Need.HISTORY}, severity=Severity.WARNING,
      options={"limit": 0.5, "rise": 0.25, "patience": 3, "min_steps": 100})
def dying_units(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """ReLU units die during training.

    ## What it does
    On each sampled step the monitor measures, per ReLU-family activation layer, the
    fraction of units that output zero for every sample of the batch. The rule fires when
    that fraction reaches ``limit``, having risen by at least ``rise`` since the first
    sample, and stays there for ``patience`` consecutive samples.

    ## Why is this bad?
    A dead ReLU gets zero gradient, so nothing brings it back: the layer's capacity shrinks
    for good. Units dying *during* training (not at initialization, see ND401) are the mark of
    a too-high learning rate or a gradient spike that pushed the biases far negative.

    ## Example
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)   # one huge step kills the layer
    ```

    ## Use instead
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    nn.LeakyReLU(0.01)                 # or GELU: a gradient for negative inputs too
    ```

    ## Options
    - ``limit`` (default 0.5): dead fraction of the layer that counts (SageMaker Debugger's
      dead-ReLU rule uses 50% of a layer).
    - ``rise`` (default 0.25): minimum increase over the first sample, so only dying during
      training is reported.
    - ``patience`` (default 3): consecutive samples (dead on one batch may be chance)...
    - ``min_steps`` (default 100): ...spanning at least this many steps.

    ## References
    - Lu et al., "Dying ReLU and Initialization: Theory and Numerical Examples" (2019).
    - AWS SageMaker Debugger, built-in rule ``DeadRelu``.
    """
    h = history_of(snap)
    if h is None:
        return
    hits = _unit_trend(h, "act_dead", DYING_ACTIVATIONS, ctx.opt("limit"), ctx.opt("rise"), int(ctx.opt("patience")),
                       int(ctx.opt("min_steps")))
    yield from _unit_findings(
        ctx, hits, "dead", "output zero for the whole batch",
        "Lower the learning rate and clip gradients; consider LeakyReLU or GELU for this layer.",
        ctx.snippet(torch="nn.LeakyReLU(negative_slope=0.01)  # instead of nn.ReLU()",
                    keras="layers.Dense(units, activation='leaky_relu')"))


@rule(code="ND610", name="saturating-units", needs={Need.HISTORY}, severity=Severity.WARNING,
      options={"limit": 0.5, "rise": 0.25, "patience": 3, "min_steps": 100})
def saturating_units(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Sigmoid/tanh units drift into saturation during training.

    ## What it does
    On each sampled step the monitor measures, per sigmoid/tanh-family activation layer, the
    fraction of units pinned at an asymptote (pre-activation beyond +-5) for more than half
    of the batch. The rule fires when that fraction reaches ``limit``, having risen by
    ``rise`` since the first sample, for ``patience`` consecutive samples. The model's output
    activation is exempt, as in ND402: a sigmoid output of a classifier that has learned is
    pinned near 0 or 1 because its predictions are confident, not because training broke.

    ## Why is this bad?
    A saturated unit's derivative is ~0 (tanh'(5) = 1.8e-4): gradients stop flowing through
    it and the layers below it stop learning. Saturation that grows during training comes
    from weights growing without bound (learning rate too high, no weight decay) or from
    unnormalized pre-activations.

    ## Example
    ```python
    nn.Sequential(nn.Linear(64, 64), nn.Tanh(), ...)  # SGD lr=5: pre-activations reach +-30
    ```

    ## Use instead
    ```python
    nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64), nn.Tanh(), ...)  # and a lower lr
    ```

    ## Options
    - ``limit`` (default 0.5): saturated fraction of the layer that counts (DeepDiagnosis uses
      50% of inputs with |x| >= 5).
    - ``rise`` (default 0.25): minimum increase over the first sample.
    - ``patience`` (default 3): consecutive samples...
    - ``min_steps`` (default 100): ...spanning at least this many steps.

    ## References
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
      networks" (AISTATS 2010): saturation of top-layer sigmoid units during training.
    """
    h = history_of(snap)
    if h is None:
        return
    hits = _unit_trend(h, "act_saturated", SATURATING_ACTIVATIONS, ctx.opt("limit"), ctx.opt("rise"),
                       int(ctx.opt("patience")), int(ctx.opt("min_steps")), skip_output=True)
    yield from _unit_findings(
        ctx, hits, "saturated", "are saturated for most of the batch",
        "Normalize the pre-activations (LayerNorm/BatchNorm) or lower the learning rate.",
        ctx.snippet(torch="nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d), nn.Tanh())",
                    keras="layers.Dense(d), layers.LayerNormalization(), layers.Activation('tanh')"))
