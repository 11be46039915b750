"""ND5xx: what the loss asks of the output, judged from measurements instead of loss names.

ND503 (in :mod:`netdoctor.rules.structure`) knows the built-in pairings. The rules here read the
adapter's loss probe (:class:`netdoctor.snapshot.LossProbe`) and the structure, so they hold for
losses written by hand: the gradient the loss sends into the logits against what cross-entropy
would send, the share of samples that get no gradient at all, the axis the output is normalized
over, and bounded activations stacked so that the output can never reach its targets.
"""

from __future__ import annotations

import math
from typing import Iterator

from netdoctor.analysis.gradflow import summed_batch
from netdoctor.analysis.graph import base_name, has_dataflow, next_layers
from netdoctor.findings import Finding, Severity
from netdoctor.rules.format import fmt, pct
from netdoctor.rules.snippets import (torch_drop_activation, torch_drop_final, torch_forward_owner, torch_is_call,
                                      torch_ref, torch_swap_activation)
from netdoctor.rules.spec import RuleContext, rule
from netdoctor.snapshot import KIND_ACTIVATION, KIND_CONV, KIND_LINEAR, LayerRecord, ModelSnapshot, Need

_NO_FIX = "the loss is the user's code: there is no mechanical fix to try"

#: Bounded activations: (low, high) of what they output.
_BOUNDED = {"softmax": (0.0, 1.0), "sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0),
            "hard_tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0)}


def _double_softmax_pairing(snap: ModelSnapshot) -> bool:
    """ND503's case (a softmax output into a loss that applies softmax itself): ND503 reports it."""
    out, loss = snap.output, snap.loss
    if out is None or loss is None:
        return False
    softmax = out.final_activation == "softmax" or out.looks_like == "probabilities"
    return softmax and (loss.from_logits is True or loss.expects == "logits")


@rule(code="ND505", name="weak-loss-gradient", needs={Need.LOSS, Need.GRADIENTS}, severity=Severity.ERROR,
      options={"min_grad_vs_ce": 0.1, "max_ignored_wrong": 0.1}, fix=_NO_FIX)
def weak_loss_gradient(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The loss sends (almost) no gradient into the output it is asked to correct.

    ## What it does
    Reads two measurements of the gradient of the user's loss with respect to the model output,
    taken on the probe batch whatever the loss is written as:

    - for class targets, over the samples the model gets wrong (target probability below 0.5),
      the norm of the gradient that reaches the logits (back through the softmax when the output
      is a distribution) divided by the norm cross-entropy would send, ``||softmax(z) - onehot||
      / N``. Any cross-entropy gives 1 (label smoothing 0.9; a multi-class hinge loss ~1; a focal
      loss, which only damps the samples already right, 1.2 at initialization and 0.25 or more
      on wrong samples after training); MSE on a 10-class softmax gives 0.02. Flagged below
      ``min_grad_vs_ce``.
    - the share of samples that the model gets wrong (argmax is not the target) and whose loss
      gradient is nevertheless exactly zero in every output unit: a clamp, ``max``/``relu`` or a
      hard threshold inside the loss. A hinge loss also sends nothing back, but only for samples
      it already classifies right with a margin. Flagged above ``max_ignored_wrong``.

    The loss on the probe batch is reported next to its expected value at initialization,
    ``ln C`` for ``C`` classes. Only losses the user chose are judged, and the softmax-into-
    cross-entropy pairing is left to ND503.

    ## Why is this bad?
    Training moves the weights by what the loss sends back. MSE on softmax probabilities
    multiplies the error by the softmax Jacobian (entries ``p(1-p)`` below ``1/C``), so every
    layer learns ~50x slower than under cross-entropy and confident wrong answers are hardly
    corrected. A loss that clamps its input sends nothing back for the samples beyond the
    clamp: they never get learned.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
    loss_fn = lambda p, y: F.mse_loss(p, F.one_hot(y, 10).float())
    ```

    ## Use instead
    ```python
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))  # logits
    loss_fn = nn.CrossEntropyLoss()
    ```

    ## Options
    - ``min_grad_vs_ce`` (default 0.1): smallest gradient relative to cross-entropy's.
    - ``max_ignored_wrong`` (default 0.1): largest share of misclassified samples with no loss
      gradient.

    ## References
    - Golik, Doetsch, Ney, "Cross-entropy vs. squared error training" (Interspeech 2013).
    - Karpathy, "A Recipe for Training Neural Networks" (2019): verify the loss at init (ln C).
    """
    lp, loss = snap.loss_probe, snap.loss
    if lp is None or loss is None or loss.source != "user" or _double_softmax_pairing(snap):
        return
    final = (snap.output.final_layer if snap.output else None) or (snap.output_layer.name if snap.output_layer
                                                                   else "the output")
    at_init = ""
    if lp.expected_init_loss is not None and math.isfinite(loss.value):
        at_init = f"; the loss is {fmt(loss.value)} against ln {lp.units} = {fmt(lp.expected_init_loss)} for a uniform guess"
    ev = {"loss": loss.name, "loss_value": loss.value, "expected_init_loss": lp.expected_init_loss,
          "grad_vs_ce": lp.grad_vs_ce, "zero_grad_rows": lp.zero_grad_rows, "zero_grad_wrong": lp.zero_grad_wrong,
          "units": lp.units}
    zero, limit_zero = lp.zero_grad_wrong, ctx.opt("max_ignored_wrong")
    if zero is not None and zero > limit_zero and lp.rows >= 8:
        yield ctx.finding(
            f"{loss.name} sends exactly zero gradient to {pct(zero)} of the {lp.rows} samples at `{final}`, all of "
            f"them misclassified (limit {pct(limit_zero)}; {pct(lp.zero_grad_rows or 0)} of all samples get no "
            f"gradient): the loss cannot correct them{at_init}",
            layer=base_name(final),
            recommendation="Remove the clamp/threshold from the loss, or use the framework's cross-entropy on logits.",
            snippet=ctx.snippet(torch="loss_fn = nn.CrossEntropyLoss()  # log_softmax inside, no clamp needed",
                                keras="loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)"),
            evidence=ev)
        return
    ratio, limit = lp.grad_vs_ce, ctx.opt("min_grad_vs_ce")
    if ratio is not None and ratio < limit:
        dist = lp.nonnegative and lp.row_sum_err < 1e-3
        what = "the softmax probabilities" if dist else "the logits"
        yield ctx.finding(
            f"{loss.name} on {what} of `{final}` sends {fmt(ratio)}x the gradient cross-entropy would into the logits "
            f"(limit {fmt(limit)}x): every layer learns that much slower and wrong confident answers are hardly "
            f"corrected{at_init}",
            layer=base_name(final),
            recommendation="Train class targets with cross-entropy on the logits (no softmax in the model).",
            snippet=ctx.snippet(torch=f"{torch_drop_final(snap, 'softmax')}\nloss_fn = nn.CrossEntropyLoss()",
                                keras='layers.Dense(num_classes)  # logits\n'
                                      'loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)'),
            evidence=ev)


def _softmax_axis_torch(snap: ModelSnapshot) -> str:
    final = _final_record(snap)
    if final is None or final.kind != KIND_ACTIVATION or final.activation != "softmax":
        return "# softmax over the classes: dim=-1, not dim=0 (the batch)"
    if torch_is_call(final):
        return (f"x = torch.softmax(x, dim=-1)  # in {torch_forward_owner(final)}: "
                "the classes, not dim=0 (the batch)")
    return f"{torch_ref(final.name)}.dim = -1  # the classes, not dim=0 (the batch)"


def _final_record(snap: ModelSnapshot) -> LayerRecord | None:
    out = snap.output
    if out is None or out.final_layer is None:
        return None
    return snap.layer(out.final_layer)


def _fed_by(snap: ModelSnapshot, rec: LayerRecord) -> LayerRecord | None:
    """The record whose output ``rec`` consumed (traced), else the one that ran just before it."""
    if rec.inputs_from:
        return snap.layer(rec.inputs_from[0])
    if has_dataflow(snap):
        return None
    prev = None
    for r in snap.layers:
        if r.name == rec.name:
            return prev
        prev = r
    return None


@rule(code="ND506", name="confined-output", needs={Need.STRUCTURE}, severity=Severity.ERROR, options={},
      fix="removing the inner activation changes the model's function: edit it by hand")
def confined_output(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A bounded output activation applied to an already bounded value (softmax of a softmax).

    ## What it does
    Follows the model's final activation (softmax or sigmoid) back to what it consumed. When that
    is itself the output of a bounded activation (softmax, sigmoid, tanh), with no weight layer in
    between, the input spans at most 1 (or 2), and the output is confined: a softmax over ``C``
    classes of values in [0, 1] never exceeds ``e / (e + C - 1)`` (0.23 for 10 classes), a
    sigmoid of values in [0, 1] stays inside [0.5, 0.73].

    ## Why is this bad?
    The loss can never reach its minimum: cross-entropy stays above ``-ln(ceiling)`` and MSE above
    the distance from the targets to the reachable range, whatever the weights become. Training
    stalls with an accuracy that may look fine while the loss does not fall.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(20, 10), nn.Softmax(dim=1), nn.Softmax(dim=1))
    ```

    ## Use instead
    ```python
    model = nn.Sequential(nn.Linear(20, 10))  # logits, with nn.CrossEntropyLoss
    ```

    ## Options
    None: the confinement follows from the two functions.

    ## References
    - DeepDiagnosis / AUTOTRAINER benchmark programs with a softmax applied twice.
    """
    final = _final_record(snap)
    if final is None or final.kind != KIND_ACTIVATION or final.activation not in ("softmax", "sigmoid"):
        return
    inner = _fed_by(snap, final)
    if inner is None or inner.kind != KIND_ACTIVATION or inner.activation not in _BOUNDED:
        return  # a weight layer (or anything unbounded) in between
    lo, hi = _BOUNDED[inner.activation]
    width = hi - lo
    units = int(final.output.shape[-1]) if final.output is not None and len(final.output.shape) >= 2 else 2
    if final.activation == "softmax":
        ceiling = math.exp(width) / (math.exp(width) + max(units - 1, 1))
        reach = f"no output can exceed {fmt(ceiling)} (e^{fmt(width)} / (e^{fmt(width)} + {units - 1}))"
        floor = f"cross-entropy cannot fall below {fmt(-math.log(ceiling))}"
    else:
        s_lo, s_hi = 1 / (1 + math.exp(-lo)), 1 / (1 + math.exp(-hi))
        ceiling = s_hi
        reach = f"the output stays inside [{fmt(s_lo)}, {fmt(s_hi)}]"
        floor = f"binary cross-entropy cannot fall below {fmt(-math.log(s_hi))} on positive labels"
    measured = ""
    if final.output is not None:
        measured = f" (measured: [{fmt(final.output.min)}, {fmt(final.output.max)}])"
    yield ctx.finding(
        f"the output {final.activation} `{final.name}` is applied to the {inner.activation} output of `{inner.name}`, "
        f"which spans at most {fmt(width)}: {reach}{measured}, so {floor} whatever the weights learn",
        layer=base_name(final.name),
        recommendation=f"Remove the inner {inner.activation}: the final activation needs unbounded logits.",
        snippet=ctx.snippet(torch=torch_drop_activation(inner),
                            keras=f"# drop the {inner.activation} before the output {final.activation}"),
        evidence={"inner": inner.name, "inner_activation": inner.activation, "final_activation": final.activation,
                  "ceiling": ceiling, "units": units})


@rule(code="ND507", name="softmax-wrong-axis", needs={Need.LOSS}, severity=Severity.ERROR,
      options={"tolerance": 1e-3}, fix="the softmax axis is in the user's code: set dim=-1 (or dim=1)")
def softmax_wrong_axis(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The output is normalized over the batch axis instead of the classes.

    ## What it does
    Measures the output's sums along each axis: non-negative outputs whose columns (the batch
    axis) sum to 1 while the rows (one sample's classes) do not are a softmax taken with
    ``dim=0``. Judged on 2-D outputs of at least 2 samples and 2 units; ``tolerance`` is the
    allowed deviation of a sum from 1.

    ## Why is this bad?
    Each sample's "probabilities" then depend on the other samples in the batch and do not sum to
    1; the model competes samples against each other instead of classes, its predictions change
    with batch size and composition, and the loss cannot reach its minimum.

    ## Example
    ```python
    nn.Sequential(nn.Linear(20, 10), nn.Softmax(dim=0))
    ```

    ## Use instead
    ```python
    nn.Sequential(nn.Linear(20, 10), nn.Softmax(dim=-1))  # or logits into CrossEntropyLoss
    ```

    ## Options
    - ``tolerance`` (default 1e-3): deviation of a sum from 1 still counted as 1.

    ## References
    - PyTorch docs of ``nn.Softmax`` (implicit ``dim`` is deprecated for this reason).
    """
    lp = snap.loss_probe
    if lp is None or lp.batch_sum_err is None or lp.units < 2 or lp.rows < 2 or not lp.nonnegative:
        return
    tol = ctx.opt("tolerance")
    if lp.batch_sum_err > tol or lp.row_sum_err <= tol:
        return
    final = (snap.output.final_layer if snap.output else None) or "the output"
    yield ctx.finding(
        f"the output of `{final}` sums to 1 over the batch axis (max error {fmt(lp.batch_sum_err)}) but not over "
        f"its {lp.units} units (max error {fmt(lp.row_sum_err)}, limit {fmt(tol)}): the softmax normalizes across "
        "samples instead of classes",
        layer=base_name(final),
        recommendation="Take the softmax over the class axis (dim=-1), or return logits to CrossEntropyLoss.",
        snippet=ctx.snippet(torch=_softmax_axis_torch(snap),
                            keras='layers.Softmax(axis=-1)'),
        evidence={"batch_sum_err": lp.batch_sum_err, "row_sum_err": lp.row_sum_err, "units": lp.units})


@rule(code="ND508", name="hidden-softmax", needs={Need.STRUCTURE}, severity=Severity.WARNING, options={},
      fix="replacing a hidden softmax changes the model's function: use ReLU/GELU by hand")
def hidden_softmax(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A softmax used as the activation of a hidden layer.

    ## What it does
    Finds a dense/conv layer whose output goes through a softmax straight into another dense/conv
    layer (by traced data flow). Attention's softmax over scores is not flagged: it feeds a
    matrix product with the values, not a weight layer.

    ## Why is this bad?
    A softmax over ``n`` hidden units outputs values around ``1/n`` that compete with each other;
    its Jacobian ``diag(p) - p p^T`` is ~``1/n`` small, so every layer below gets ~25x less
    gradient than with ReLU (measured on a 3-layer MLP), and the representation is squeezed onto a
    simplex.

    ## Example
    ```python
    nn.Sequential(nn.Linear(20, 64), nn.Softmax(dim=1), nn.Linear(64, 10))
    ```

    ## Use instead
    ```python
    nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10))
    ```

    ## Options
    None.

    ## References
    - Goodfellow, Bengio, Courville, *Deep Learning* (2016), 6.3 (hidden units) and 6.2.2.3.
    """
    for rec in snap.layers:
        if rec.kind != KIND_ACTIVATION or rec.activation != "softmax":
            continue
        src = _fed_by(snap, rec)
        if src is None or src.kind not in (KIND_LINEAR, KIND_CONV):
            continue
        consumers = [c for c in next_layers(snap, rec) if c.kind in (KIND_LINEAR, KIND_CONV)]
        if not consumers:
            continue
        yield ctx.finding(
            f"`{src.name}` feeds a softmax (`{rec.name}`) whose output goes into `{consumers[0].name}`: a softmax "
            "as a hidden activation squeezes the units onto a simplex and shrinks the gradient of every layer below",
            layer=base_name(src.name),
            recommendation="Use ReLU (or GELU) as the hidden activation; keep softmax for the output.",
            snippet=ctx.snippet(torch=torch_swap_activation(rec, "nn.ReLU()", "torch.relu(x)"),
                                keras=f'layers.Dense(..., activation="relu")  # `{base_name(src.name)}`'),
            evidence={"layer": src.name, "softmax": rec.name, "consumer": consumers[0].name})


def _floor_scale(snap: ModelSnapshot) -> float:
    """A loss at most this large is at its floor: ln C / 10 for class targets, the target variance / 10
    for float targets (0 when neither is known)."""
    lp = snap.loss_probe
    if lp is None:
        return 0.0
    if lp.expected_init_loss is not None:
        return 0.1 * lp.expected_init_loss
    return 0.1 * lp.target_var if lp.target_var else 0.0


def _likely_causes(snap: ModelSnapshot) -> list[str]:
    """The measurements of this snapshot that explain a loss that does not fall, most direct first."""
    out: list[str] = []
    lp, loss = snap.loss_probe, snap.loss
    if lp is not None:
        if lp.zero_grad_wrong is not None and lp.zero_grad_wrong > 0.1:
            out.append(f"the loss sends no gradient to {pct(lp.zero_grad_wrong)} of the samples, all misclassified")
        if lp.grad_vs_ce is not None and lp.grad_vs_ce < 0.1:
            out.append(f"the loss sends {fmt(lp.grad_vs_ce)}x cross-entropy's gradient into the logits")
        if lp.batch_sum_err is not None and lp.batch_sum_err < 1e-3 < lp.row_sum_err:
            out.append("the output is normalized over the batch axis")
        if lp.target_floor and lp.target_var and snap.output is not None:
            act = snap.output.final_activation
            key = "0,1" if act in ("sigmoid", "softmax", "hard_sigmoid") else "-1,1" if act in (
                "tanh", "hard_tanh", "softsign") else None
            floor = lp.target_floor.get(key) if key else None
            if floor is not None and floor > 0.1 * lp.target_var:
                out.append(f"the {act} output cannot reach the targets (MSE floor {fmt(floor)} against target "
                           f"variance {fmt(lp.target_var)})")
        if lp.expected_init_loss is not None and loss is not None and math.isfinite(loss.value) \
                and loss.value > 3 * lp.expected_init_loss:
            out.append(f"the loss starts at {fmt(loss.value)}, far above ln {lp.units} = {fmt(lp.expected_init_loss)}")
    final = _final_record(snap)
    if final is not None and final.kind == KIND_ACTIVATION and final.activation in ("softmax", "sigmoid"):
        inner = _fed_by(snap, final)
        if inner is not None and inner.kind == KIND_ACTIVATION and inner.activation in _BOUNDED:
            out.append(f"the output {final.activation} is applied to a bounded {inner.activation}")
    hidden = [r.name for r in snap.layers if r.kind == KIND_ACTIVATION and r.activation == "softmax"
              and (src := _fed_by(snap, r)) is not None and src.kind in (KIND_LINEAR, KIND_CONV)
              and any(c.kind in (KIND_LINEAR, KIND_CONV) for c in next_layers(snap, r))]
    if hidden:
        out.append(f"a softmax is used as a hidden activation (`{hidden[0]}`)")
    zero = [r.name for r in snap.weight_layers() if r.weight is not None and r.weight.grad is not None
            and r.weight.trainable and r.weight.grad.l2 == 0]
    if zero:
        out.append(f"{len(zero)} weight layer{'s' if len(zero) > 1 else ''} get no gradient at all "
                   f"({', '.join(f'`{n}`' for n in zero[:3])}{'...' if len(zero) > 3 else ''})")
    return out


@rule(code="ND509", name="cannot-fit-probe-batch", needs={Need.FIT}, severity=Severity.WARNING,
      options={"max_ratio": 0.5}, fix="the cause is named by the other findings and measurements")
def cannot_fit_probe_batch(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The model cannot fit its own probe batch (opt-in: ``--fit-probe``).

    ## What it does
    With ``check(..., fit_probe=True)`` / ``netdoctor check --fit-probe``, a copy of the model is
    trained on the probe batch alone for a bounded number of full-batch Adam steps (150 at
    learning rate 1e-3, seeded; see :mod:`netdoctor.verify.fit`). A model that can learn at all
    drives the loss on a few hundred samples it sees every step far down (the probe stops early
    at a quarter of the starting loss). Flags a loss that ends above ``max_ratio`` times where it
    started (or does not stay finite), unless it is already at its floor (below ln C / 10 for
    class targets, the target variance / 10 for float targets: a trained model), and names the
    measurements that explain it: a loss that sends no or too little gradient (ND505), an output
    that cannot reach its targets (ND503, ND506), a wrong-axis or hidden softmax (ND507, ND508),
    layers without gradient (ND304). With no such measurement the finding is info: small or
    partly frozen models (a 2-16-1 circle classifier, a linear head on a frozen backbone) may only
    need more than 150 steps at this learning rate.

    ## Why is this bad?
    If the model cannot fit a batch it sees over and over, it cannot fit the data set: whatever
    is wrong (the loss, the output activation, the targets, the initialization) is wrong before
    any question of generalization, and no amount of training time fixes it. The check catches
    faults no single measurement names.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(1), nn.Softmax(1))
    loss_fn = lambda p, y: F.nll_loss(torch.log(p), y)   # cannot go below 1.46
    ```

    ## Use instead
    ```python
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    loss_fn = nn.CrossEntropyLoss()
    ```

    ## Options
    - ``max_ratio`` (default 0.5): the largest final/initial loss ratio that counts as fitting.

    ## References
    - Karpathy, "A Recipe for Training Neural Networks" (2019): overfit one batch.
    """
    fit = snap.fit
    if fit is None or not fit.losses:
        return
    first, last, limit = fit.losses[0], fit.final, ctx.opt("max_ratio")
    if not math.isfinite(first) or first <= 0:
        return
    ratio = last / first if math.isfinite(last) else math.inf
    if ratio <= limit or (math.isfinite(last) and last <= _floor_scale(snap)):
        return  # fitted, or already at its floor (a trained model)
    causes = _likely_causes(snap)
    why = ("; likely cause: " + "; ".join(causes)) if causes else (
        "; no measurement explains it (a small or frozen model may only need more steps)")
    end = fmt(last) if math.isfinite(last) else str(last)
    yield ctx.finding(
        f"after {fit.steps} {fit.optimizer} steps on its own probe batch of {snap.batch_size} samples the loss went "
        f"from {fmt(first)} to {end} ({fmt(ratio)}x; limit {fmt(limit)}x): the model cannot fit data it sees every "
        f"step{why}",
        recommendation="Fix what the likely cause names first; a model must be able to overfit one batch.",
        severity=None if causes else Severity.INFO,
        evidence={"initial_loss": first, "final_loss": last, "ratio": ratio, "steps": fit.steps,
                  "seconds": fit.seconds, "likely_causes": causes, "note": fit.note})


@rule(code="ND510", name="summed-loss", needs={Need.LOSS, Need.GRADIENTS}, severity=Severity.WARNING,
      options={"band": 2.0, "min_rows": 16, "sum_tolerance": 0.05},
      fix="the reduction is in the user's loss: use the mean")
def summed_loss(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The loss is summed over the batch instead of averaged.

    ## What it does
    Two measurements, whatever the loss is written as:

    - For any loss the user passed with a tensor output and tensor targets (torch) or compiled
      (Keras), the loss is evaluated again on the two halves of the probe batch's output rows (no
      extra forward pass) and ``(L(half 1) + L(half 2)) / L(both)`` is read: 2 for a mean over the
      batch, exactly 1 for a sum. Flagged within ``sum_tolerance`` of 1 (at least ``min_rows``
      rows). A loss summed over the output units and averaged over the batch (``((y - t)**2)
      .sum(1).mean()``) gives 2 and is not flagged; a loss that mixes samples (contrastive, batch
      statistics) gives neither.
    - For class targets, the gradient the loss sends into the logits relative to mean
      cross-entropy's (the loss probe's ``grad_vs_ce``, see ND505). A summed loss sends ``N``
      times the mean's gradient for a batch of ``N``: flagged when the ratio lies within ``band``
      of the number of rows (and there are at least ``min_rows``), and every sample gets some
      gradient (a clamped hand-written loss can also send large gradients, but leaves samples
      without any; that is ND505).

    ## Why is this bad?
    With ``reduction="sum"`` the gradient, and so the effective learning rate of SGD, grows with
    the batch size: a learning rate tuned at one batch size explodes at a larger one, the loss
    curve is not comparable across batch sizes, and gradient clipping thresholds stop meaning
    anything. Adam hides part of it, which is how the bug survives.

    ## Example
    ```python
    loss_fn = nn.MSELoss(reduction="sum")  # or nn.CrossEntropyLoss(reduction="sum")
    ```

    ## Use instead
    ```python
    loss_fn = nn.MSELoss()  # reduction="mean"
    ```

    ## Options
    - ``band`` (default 2.0): factor around the batch size counted as "summed" (gradient test).
    - ``min_rows`` (default 16): smallest batch on which sum and mean are told apart.
    - ``sum_tolerance`` (default 0.05): largest distance of the half-batch ratio from 1 (a sum).

    ## References
    - PyTorch docs of ``reduction``; Goyal et al., "Accurate, Large Minibatch SGD" (2017), the
      linear scaling rule that assumes a mean.
    """
    lp, loss = snap.loss_probe, snap.loss
    if lp is None or loss is None or loss.source != "user" or lp.rows < ctx.opt("min_rows"):
        return
    final = (snap.output.final_layer if snap.output else None) or "the output"
    band = ctx.opt("band")
    summed_grad = lp.grad_vs_ce is not None and lp.rows / band <= lp.grad_vs_ce <= lp.rows * band \
        and not (lp.zero_grad_rows or 0.0) > 0.0  # a summed loss still sends every sample a gradient; a clamp does not
    summed_split = summed_batch(snap, min_rows=ctx.opt("min_rows"), tolerance=ctx.opt("sum_tolerance")) is not None
    if not (summed_grad or summed_split):
        return
    parts = []
    if summed_split:
        parts.append(f"{loss.name} on the two halves of the probe batch adds up to its value on the whole batch "
                     f"((L1 + L2) / L = {fmt(lp.sum_ratio)}; a mean gives 2)")
    if summed_grad:
        parts.append(f"{loss.name} sends {fmt(lp.grad_vs_ce)}x the gradient of mean cross-entropy into the logits "
                     f"of `{final}`, about the {lp.rows} rows of the batch (band {fmt(band)}x)")
    classes = lp.target_classes is not None
    yield ctx.finding(
        "; ".join(parts) + f": the loss is summed over the batch, so its gradients, and the step size, are "
        f"{snap.batch_size}x a mean's and grow with the batch size"
        + (" (ND302 judges them at the mean's scale)" if summed_split else ""),
        layer=base_name(final),
        recommendation="Average the loss over the batch (reduction='mean'; a hand-written loss: .mean() over samples).",
        snippet=ctx.snippet(
            torch=('loss_fn = nn.CrossEntropyLoss()  # reduction="mean", not "sum"' if classes else
                   'loss_fn = nn.MSELoss()  # reduction="mean", not "sum"; by hand: ((y - t) ** 2).mean()'),
            keras=('loss=keras.losses.SparseCategoricalCrossentropy(reduction="sum_over_batch_size")' if classes else
                   'loss=keras.losses.MeanSquaredError(reduction="sum_over_batch_size")')),
        evidence={"grad_vs_ce": lp.grad_vs_ce, "sum_ratio": lp.sum_ratio, "rows": lp.rows, "loss": loss.name})
