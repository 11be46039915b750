"""ND5xx: architecture, and the pairing of the output activation with the loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from netdoctor.analysis.graph import PASS_THROUGH_KINDS, base_name, has_dataflow, next_layers
from netdoctor.findings import Finding, Report, Severity
from netdoctor.rules._targets import regression_with_cross_entropy, target_mismatch
from netdoctor.rules.format import fmt, name_list, plural
from netdoctor.rules.snippets import batchnorm_snippet, keras_ctor, torch_ctor, torch_drop_final
from netdoctor.rules.spec import RuleContext, rule
from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_BATCHNORM,
    KIND_CONV,
    KIND_DROPOUT,
    KIND_LINEAR,
    ROLE_BIAS,
    ROLE_NORM_SCALE,
    LayerRecord,
    ModelSnapshot,
    Need,
)
from netdoctor.verify.plan import FixPlan, norm_step, plain_hidden
from netdoctor.verify.protocol import step

if TYPE_CHECKING:
    from netdoctor.verify.verdict import Measure


def _dropout_rate(rec: LayerRecord) -> float | None:
    for key in ("p", "rate"):
        v = rec.attrs.get(key)
        if isinstance(v, (int, float)):
            return float(v)
    return None


def _bn_fed_by(snap: ModelSnapshot, drop: LayerRecord) -> LayerRecord | None:
    """The BatchNorm that ``drop``'s output reaches through activations/pooling/reshapes only."""
    flow = has_dataflow(snap)
    frontier, seen = next_layers(snap, drop), {drop.name}
    for _ in range(8):
        nxt: list[LayerRecord] = []
        for r in frontier:
            if r.name in seen:
                continue
            seen.add(r.name)
            if r.kind == KIND_BATCHNORM:
                return r
            if r.kind in PASS_THROUGH_KINDS and not (flow and len(r.inputs_from) >= 2):
                nxt.extend(next_layers(snap, r))  # a merge (residual add) mixes in an undropped operand: stop
        frontier = nxt
    return None


def _bn_units(bn: LayerRecord) -> str:
    p = bn.param(ROLE_NORM_SCALE)
    if p is not None and p.stats.shape:
        return str(p.stats.shape[0])
    v = bn.attrs.get("num_features") or bn.attrs.get("units")
    return str(v) if v else "num_features"


def _move_dropout(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    """Move the Dropout after the BatchNorm (after its activation when one follows); else remove it."""
    drop, bn = f.evidence.get("dropout") or f.layer, f.evidence.get("batchnorm")
    after = snap.successor(bn) if bn else None
    target = after.name if after is not None and after.kind == KIND_ACTIVATION and "/" not in after.name else bn
    remove = FixPlan((step("remove", drop),))
    return FixPlan((step("move_dropout", drop, after=target),), fallbacks=(remove,)) if target else remove


@rule(code="ND501", name="batchnorm-with-dropout", needs={Need.STRUCTURE}, severity=Severity.WARNING,
      options={"min_rate": 0.0}, fix=_move_dropout)
def batchnorm_with_dropout(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Dropout feeding a BatchNorm (variance shift between training and inference).

    ## What it does
    Flags a Dropout layer whose output reaches a BatchNorm directly or through activations,
    pooling and reshapes only (by the traced data flow, else by execution order). A Dropout
    after the last BatchNorm (``BN -> ReLU -> Dropout``, the classifier-head dropout of
    MobileNet/EfficientNet/VGG-BN) is the accepted placement and is never flagged, and neither
    is the mere presence of both layer types in one model. A path through a residual addition
    is not followed: the undropped identity operand dominates the statistics.

    ## Why is this bad?
    During training, dropout scales the kept activations by ``1/(1-p)``, so the BatchNorm after it
    accumulates running statistics of a signal whose variance is up to ``1/(1-p)`` times the
    variance it sees at inference, when dropout is off. The normalized inference activations are
    then systematically off ("variance shift"), which costs accuracy. The lecture's advice: batch
    normalization already regularizes; don't stack it with dropout.

    ## Example
    ```python
    nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(128), nn.Linear(128, 10))
    ```

    ## Use instead
    ```python
    nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    ```

    ## Options
    - ``min_rate`` (default 0.0): dropout rates at or below this are ignored (``p=0`` is a no-op).

    ## References
    - Li, Chen, Hu, Yang, "Understanding the Disharmony between Dropout and Batch Normalization
      by Variance Shift" (CVPR 2019).
    """
    for drop in snap.layers:
        if drop.kind != KIND_DROPOUT:
            continue
        p = _dropout_rate(drop)
        if p is not None and p <= ctx.opt("min_rate"):
            continue
        bn = _bn_fed_by(snap, drop)
        if bn is None:
            continue
        shift = 1.0 / (1.0 - p) if p is not None and p < 1 else None
        p_txt = f", p={p:g}" if p is not None else ""
        shift_txt = f" (up to {fmt(shift)}x the inference variance)" if shift else ""
        units = _bn_units(bn)
        dim = str(bn.type_name)[-2] if str(bn.type_name).endswith("d") and str(bn.type_name)[-2].isdigit() else "1"
        pv = f"{p:g}" if p is not None else "0.5"
        yield ctx.finding(
            f"`{drop.name}` ({drop.type_name}{p_txt}) feeds `{bn.name}` ({bn.type_name}): BatchNorm learns statistics "
            f"of the dropped-out signal{shift_txt} and applies them to the undropped one at inference "
            "(limit: no Dropout before a BatchNorm)",
            layer=drop.name,
            recommendation="Move the Dropout after the last BatchNorm (BatchNorm -> activation -> Dropout) or remove it.",
            snippet=ctx.snippet(
                torch=f"nn.BatchNorm{dim}d({units}), nn.ReLU(), nn.Dropout({pv}),  # dropout after the BatchNorm",
                keras=f'layers.BatchNormalization(),\nlayers.Activation("relu"),\nlayers.Dropout({pv}),  # after the BN',
            ),
            evidence={"dropout": drop.name, "batchnorm": bn.name, "rate": p, "variance_shift": shift},
        )


def _runs(snap: ModelSnapshot) -> list[list[LayerRecord]]:
    """Runs of consecutive dense/conv layers (execution order) with no normalization in between."""
    runs: list[list[LayerRecord]] = [[]]
    for rec in snap.layers:
        if rec.is_norm:
            runs.append([])
        elif rec.kind in (KIND_LINEAR, KIND_CONV) and rec.executed:
            runs[-1].append(rec)
    return [r for r in runs if r]


def _normalize_run(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    names = plain_hidden(snap, f.evidence.get("layers", ()))
    return FixPlan(tuple(norm_step(snap, n) for n in names)) if names else "no plain hidden layer to normalize"


def _longest_plain_run(f: Finding, m: Measure) -> dict[str, Any]:
    """The longest run of executed dense/conv layers that no normalization layer interrupts."""
    best = cur = 0
    for r in m.snap.layers:
        if r.is_norm:
            cur = 0
        elif r.kind in (KIND_LINEAR, KIND_CONV) and r.executed:
            cur += 1
            best = max(best, cur)
    return {"longest plain run": best}


@rule(code="ND502", name="deep-without-normalization", needs={Need.STRUCTURE}, severity=Severity.WARNING,
      options={"max_depth": 8}, fix=_normalize_run, metric=_longest_plain_run)
def deep_without_normalization(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A deep stack of weight layers with no normalization and no residual path.

    ## What it does
    Counts the longest run of dense/conv layers (in execution order) with no BatchNorm,
    LayerNorm or GroupNorm in between, in a network where the adapter saw no residual
    connection, and flags it when it has ``max_depth`` or more layers. Self-normalizing
    networks (SELU activations with LeCun initialization) are designed for this and skipped.

    ## Why is this bad?
    Without normalization or skip connections, the signal and gradient scales are a product of
    one factor per layer; He/Glorot initialization only keeps the product near 1 on average, so
    deep plain stacks drift into vanishing or exploding gradients ("both methods may not work
    well if the network is really deep").

    ## Example
    ```python
    nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(64, 64), nn.ReLU())], nn.Linear(64, 10))
    ```

    ## Use instead
    ```python
    nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU())],
                  nn.Linear(64, 10))
    ```

    ## Options
    - ``max_depth`` (default 8): the shortest run reported. LeNet (5) and typical 3-5 layer MLPs
      stay below; AUTOTRAINER's vanishing-gradient demo (9 Dense layers) and VGG16 (16) reach it.

    ## References
    - Ioffe & Szegedy, "Batch Normalization" (2015); He et al., "Deep Residual Learning" (2016).
    - Klambauer et al., "Self-Normalizing Neural Networks" (2017).
    """
    if snap.residual is True:
        return
    runs = [r for r in _runs(snap) if len(r) >= ctx.opt("max_depth")]
    for run in runs:
        if sum(1 for r in run if (r.activation or "") == "selu") * 2 >= len(run):
            continue
        unknown = " (the adapter could not tell whether there are residual connections)" if snap.residual is None else ""
        yield ctx.finding(
            f"{plural(len(run), 'weight layer')} run in a row from `{run[0].name}` to `{run[-1].name}` with no "
            f"normalization layer and no residual connection{unknown} (limit: {ctx.opt('max_depth') - 1} in a row)",
            layer=run[0].name,
            recommendation="Put a BatchNorm (or LayerNorm) after the hidden weight layers, or add residual connections.",
            snippet=batchnorm_snippet(ctx, run[0]),
            evidence={"depth": len(run), "layers": [r.name for r in run], "residual": snap.residual},
        )


_KERAS_LOSS = {"categorical": "CategoricalCrossentropy", "sparse": "SparseCategoricalCrossentropy",
               "binary": "BinaryCrossentropy"}


def _keras_loss(name: str, from_logits: bool) -> str:
    n = name.lower().replace("_", "")
    cls = _KERAS_LOSS["sparse"] if "sparse" in n else _KERAS_LOSS["binary"] if "binary" in n else \
        _KERAS_LOSS["categorical"]
    return f"keras.losses.{cls}(from_logits={from_logits})"


def _output_fix(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    """Remove the final activation, or switch the loss to the form that takes what the model outputs."""
    ev, out, loss = f.evidence, snap.output, snap.loss
    act, units = ev.get("final_activation"), int(ev.get("units") or 1)
    if out is None or loss is None:
        return "the output or the loss was not measured"
    if act == "softmax" and units == 1:
        return "a one-unit softmax needs a new head and loss (one sigmoid unit with binary cross-entropy)"
    if ev.get("target_not_dist") is not None:
        return "a regression trained with cross-entropy needs another loss (MSE): edit the loss by hand"
    expects = "logits" if loss.from_logits is True else ev.get("expects") or loss.expects
    if loss.from_logits is False and "crossentropy" in loss.name.lower().replace("_", ""):
        expects = "probabilities"
    final = out.final_layer
    module = final is not None and "/" not in final and snap.framework == "torch"
    keras = snap.framework == "keras"
    if expects == "logits" and act in ("softmax", "sigmoid"):
        if keras:
            return FixPlan((step("loss_form", form="probabilities"),))
        by_loss = FixPlan((step("loss_form", form="probabilities"),))
        if module:  # a functional softmax in forward() cannot be removed: switch the loss instead
            return FixPlan((step("remove", final, transform="log" if act == "softmax" else "logit"),), (by_loss,))
        return by_loss
    if expects == "probabilities" and act == "sigmoid" and units > 1:
        return FixPlan((step("set_activation", (final or "").split("/")[0], activation="softmax"),))
    if expects == "probabilities":
        return FixPlan((step("loss_form", form="logits", units=units),))
    if expects == "log_probabilities":
        if act == "softmax" and module:
            return FixPlan((step("set_activation", final, activation="log_softmax", transform="log"),))
        return FixPlan((step("loss_form", form="logits", units=units),))
    return "this output/loss pairing has no mechanical fix"


def _output_loss(f: Finding, m: Measure) -> dict[str, Any]:
    """The output/loss pairing in words, and the gradient that reaches the head."""
    snap, out = m.snap, {}
    if snap.output is None:
        return out
    loss = snap.loss
    out["output/loss"] = (f"{snap.output.final_activation or 'linear'} into "
                          f"{loss.name if loss else '?'} (expects {loss.expects if loss else '?'})")
    head = snap.output_layer
    if head is not None and head.weight is not None and head.weight.grad is not None:
        out["head grad_norm"] = head.weight.grad.l2
    return out


@rule(code="ND503", name="output-loss-mismatch", needs={Need.STRUCTURE, Need.LOSS}, severity=Severity.ERROR,
      options={}, fix=_output_fix, metric=_output_loss)
def output_loss_mismatch(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """The output activation contradicts what the loss expects.

    ## What it does
    Compares the model's final activation (and, when it is not known structurally, whether the
    output rows sum to 1 or look like log-probabilities) with what the user's loss expects.
    Values inside [0, 1] alone are not taken as a sigmoid: zero, constant or tiny linear heads
    produce them too. Flags: Softmax into ``CrossEntropyLoss`` or a ``from_logits=True``
    Keras loss; Sigmoid into ``BCEWithLogitsLoss``; raw logits (or ReLU outputs) into a loss
    that expects probabilities (``BCELoss``, Keras' default ``from_logits=False``);
    probabilities or logits into ``NLLLoss`` (which wants log-probabilities); sigmoid outputs
    into categorical cross-entropy; and a softmax over a single output unit (always 1.0, with
    any loss). Only losses the user chose are judged, never netdoctor's default or surrogate.
    Keras 3 on the TensorFlow backend is a special case: a softmax/sigmoid output carries its
    logits and a ``from_logits=True`` loss reads them (with a warning), so training is the same as
    with logits; the pairing is then a warning (it breaks on the JAX and torch backends), not an
    error.
    When real targets were given (their statistics are collected with the data rules), the
    output is also checked against them: a softmax for multi-hot targets (rows of several 0/1
    labels, which no distribution summing to 1 can match) under any loss but a categorical
    cross-entropy, and a sigmoid/tanh/softmax output under a regression loss (MSE, MAE, Huber)
    whose targets lie further outside the activation's range than the range is wide (``y = 80x +
    10`` regressed through a sigmoid).
    Two measured cases hold for losses written by hand: a loss that is non-finite (or raises, as
    torch's ``BCELoss`` does) on the output as it is and finite on the same output clamped into
    (0, 1) is a log-loss fed with an unbounded (linear) output; and a categorical cross-entropy
    (by name, or measured: the gradient at the output is ``softmax(z) * sum(t) - t``) trained
    against float targets that are not class distributions (a negative entry, or rows not summing
    to 1, in at least 20% of the rows) or over a single output unit (constant loss, no gradient)
    is a regression trained with a classification loss.

    ## Why is this bad?
    A double softmax squashes the logits' range so gradients become tiny and training crawls;
    probabilities read as logits (or vice versa) give a loss that is minimized by the wrong
    outputs; a one-unit softmax outputs 1.0 for every input, so no weight gets a gradient.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(64, 10), nn.Softmax(dim=1))
    loss_fn = nn.CrossEntropyLoss()           # applies log_softmax again
    ```

    ## Use instead
    ```python
    model = nn.Sequential(nn.Linear(64, 10))  # logits
    loss_fn = nn.CrossEntropyLoss()
    ```

    ## Options
    None: these pairings are wrong by construction.

    ## References
    - PyTorch docs of ``CrossEntropyLoss``, ``BCEWithLogitsLoss``, ``NLLLoss``; Keras docs of
      ``from_logits``.
    - DeepDiagnosis/DeepLocalize benchmark, SO 31880720 (softmax over one unit), SO 38648195
      (softmax for multi-label targets), SO 48221692 (sigmoid output for a linear regression).
    """
    out, loss = snap.output, snap.loss
    if out is None:
        return
    shape = out.stats.shape
    units = int(shape[-1]) if len(shape) >= 2 else 1
    act = (out.final_activation or "").lower() or None
    looks = out.looks_like
    final = out.final_layer or (snap.output_layer.name if snap.output_layer else "the output layer")
    # Only the structural final activation counts as a sigmoid: degenerate linear heads (zero, constant or
    # tiny weights) output values inside (0, 1) that *look* like a sigmoid's. Rows that sum to 1 with some
    # spread are strong enough evidence of a softmax applied outside the traced layers.
    softmax = act == "softmax" or (act is None and looks == "probabilities" and out.stats.std > 0 and units > 1)
    sigmoid = act == "sigmoid"
    logits = act in (None, "linear") and looks == "logits"
    ev = {"final_activation": act, "looks_like": looks, "units": units,
          "loss": None if loss is None else loss.name, "expects": None if loss is None else loss.expects,
          "from_logits": None if loss is None else loss.from_logits}
    head = snap.output_layer
    if act == "softmax" and units == 1:
        yield ctx.finding(
            f"the output is a softmax over a single unit (`{final}`): it is 1.0 for every input, so the loss cannot "
            "depend on any weight (limit: softmax needs at least 2 units)",
            layer=base_name(final), recommendation="Use one unit with a sigmoid (binary) or one unit per class with softmax.",
            snippet=ctx.snippet(torch=f"{torch_drop_final(snap, 'softmax')}\nloss_fn = nn.BCEWithLogitsLoss()  # on the one logit",
                                keras='layers.Dense(1, activation="sigmoid")\n# model.compile(loss="binary_crossentropy")'),
            evidence=ev)
        return
    if loss is None or loss.source != "user":
        return
    expects = loss.expects
    lname = loss.name.lower().replace("_", "")
    if loss.from_logits is True:
        expects = "logits"
    elif loss.from_logits is False and "crossentropy" in lname:
        expects = "probabilities"
    problem = fix = torch_fix = keras_fix = None
    severity = None
    regression = regression_with_cross_entropy(snap, units, base_name(final)) if act in (None, "linear") else None
    if regression is not None:  # before the pairing: the loss is the wrong kind, not only in the wrong form
        problem, fix, torch_fix, keras_fix = regression.problem, regression.fix, regression.torch, regression.keras
        ev.update(regression.evidence)
    elif loss.unit_range and not (softmax or sigmoid):
        what = f"raised {loss.error}" if loss.error else f"is {fmt(loss.value)}"
        head_kind = "a linear head" if act in (None, "linear") else f"a {act} output"
        problem = (f"{loss.name} {what} on the output as it is, which spans [{fmt(out.stats.min)}, "
                   f"{fmt(out.stats.max)}], and is finite once the output is clamped into (0, 1) (measured): the loss "
                   f"takes probabilities (a log-loss), but {head_kind} is unbounded")
        fix = "End the model in a sigmoid, or give the logits to the loss's logits form (BCEWithLogitsLoss, from_logits=True)."
        torch_fix = "loss_fn = nn.BCEWithLogitsLoss()  # takes the linear output (logits); or end the model in nn.Sigmoid()"
        keras_fix = "loss=keras.losses.BinaryCrossentropy(from_logits=True)  # or a sigmoid output layer"
        ev.update(output_min=out.stats.min, output_max=out.stats.max, loss_error=loss.error, unit_range=True)
    elif expects == "logits" and (softmax or sigmoid) and out.carries_logits:
        # Keras 3 on TensorFlow: the loss reads the logits the softmax/sigmoid output carries and only warns.
        severity = Severity.WARNING
        ev["carries_logits"] = True
        measured = ""
        lp = snap.loss_probe
        if lp is not None and lp.grad_vs_ce is not None:
            measured = f" (measured: the logits get {fmt(lp.grad_vs_ce)}x the cross-entropy gradient)"
            ev["grad_vs_ce"] = lp.grad_vs_ce
        problem = (f"the output goes through a {act}, and {loss.name} has from_logits=True: on the TensorFlow backend "
                   f"Keras recovers the logits the {act} output carries, so training is unaffected{measured}, but on "
                   f"the JAX and torch backends the {act} is applied twice")
        fix = "Make the pairing explicit: drop the output activation, or set from_logits=False."
        keras_fix = f"loss={_keras_loss(loss.name, False)}  # the model already ends in {act}"
    elif expects == "logits" and softmax:
        problem = f"the output already goes through a softmax, and {loss.name} applies log-softmax again"
        fix = "Return raw logits from the model; the loss applies the softmax itself."
        torch_fix = f"{torch_drop_final(snap, 'softmax')}\nloss_fn = nn.CrossEntropyLoss()  # on logits"
        keras_fix = f"loss={_keras_loss(loss.name, False)}  # the model already ends in softmax"
    elif expects == "logits" and sigmoid:
        problem = f"the output already goes through a sigmoid, and {loss.name} applies the sigmoid again"
        fix = "Return raw logits from the model; the loss applies the sigmoid itself (numerically stable)."
        torch_fix = f"{torch_drop_final(snap, 'sigmoid')}\nloss_fn = nn.BCEWithLogitsLoss()"
        keras_fix = f"loss={_keras_loss(loss.name, False)}  # the model already ends in sigmoid"
    elif expects == "probabilities" and (logits or act not in (None, "linear", "softmax", "sigmoid")):
        what = "raw logits" if logits else f"{act} outputs"
        span = ""
        if out.stats.frac_nonfinite == 0 and (out.stats.min < 0 or out.stats.max > 1):
            span = f" (measured: the output spans [{fmt(out.stats.min)}, {fmt(out.stats.max)}], outside [0, 1])"
            ev.update(output_min=out.stats.min, output_max=out.stats.max)
        problem = f"{what} go into {loss.name}, which expects probabilities{span}"
        fix = "Use the logits version of the loss (or end the model in softmax/sigmoid)."
        torch_fix = "loss_fn = nn.BCEWithLogitsLoss() if binary else nn.CrossEntropyLoss()  # both take logits"
        keras_fix = (f"loss={_keras_loss(loss.name, True)}" if logits else
                     f'layers.Dense({units}, activation="{"sigmoid" if units == 1 else "softmax"}")  # output layer')
    elif expects == "probabilities" and sigmoid and units > 1 and "categorical" in lname:
        problem = f"{units} independent sigmoid outputs go into {loss.name}, which expects a distribution summing to 1"
        fix = "End the model in a softmax for single-label classes (or use binary cross-entropy for multi-label)."
        torch_fix = "loss_fn = nn.CrossEntropyLoss()  # on logits, no sigmoid"
        keras_fix = f'layers.Dense({units}, activation="softmax")  # output layer'
    elif expects == "log_probabilities" and (softmax or logits):
        problem = f"{'probabilities' if softmax else 'raw logits'} go into {loss.name}, which expects log-probabilities"
        fix = "Use log_softmax as the final activation, or CrossEntropyLoss on logits."
        torch_fix = "nn.LogSoftmax(dim=-1)  # as the final layer, or: loss_fn = nn.CrossEntropyLoss() on logits"
        keras_fix = f"loss={_keras_loss(loss.name, not softmax)}"
    if problem is None:
        found = target_mismatch(snap, act, units, base_name(final))
        if found is None:
            return
        problem, fix, torch_fix, keras_fix = found.problem, found.fix, found.torch, found.keras
        ev.update(found.evidence)
    yield ctx.finding(
        f"output/loss mismatch at `{final}` ({units} unit{'s' if units != 1 else ''}, final activation {act or 'none'}, "
        f"output looks like {looks}): {problem}",
        layer=base_name(final) if head is None else head.name,
        recommendation=fix, snippet=ctx.snippet(torch=torch_fix, keras=keras_fix), evidence=ev, severity=severity)


def _remove_biases(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    names = [p[0] for p in f.evidence.get("pairs", ())] or [f.layer]
    return FixPlan(tuple(step("no_bias", n) for n in names))


@rule(code="ND504", name="bias-before-batchnorm", needs={Need.STRUCTURE}, severity=Severity.INFO,
      options={"max_listed": 5}, fix=_remove_biases)
def bias_before_batchnorm(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A layer with a bias feeding straight into BatchNorm (the bias is cancelled).

    ## What it does
    Finds dense/conv layers that have a bias and whose output goes directly (no activation in
    between) into a BatchNorm. Many such layers are summarized in one finding.

    ## Why is this bad?
    BatchNorm subtracts the per-channel batch mean, which removes any constant the layer adds:
    the bias gets no gradient, wastes parameters and memory, and BatchNorm's own shift does
    its job. Harmless, hence info (Keras' ResNet50 has 49 such layers and trains fine).

    ## Example
    ```python
    nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), nn.ReLU())
    ```

    ## Use instead
    ```python
    nn.Sequential(nn.Conv2d(3, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
    ```

    ## Options
    - ``max_listed`` (default 5): above this many layers the findings are merged into one.

    ## References
    - Ioffe & Szegedy, "Batch Normalization" (2015), section 3.2.
    """
    hits: list[tuple[LayerRecord, LayerRecord]] = []
    for rec in snap.layers:
        if rec.kind not in (KIND_LINEAR, KIND_CONV):
            continue
        if rec.param(ROLE_BIAS) is None and rec.attrs.get("use_bias") is not True:
            continue
        nxt = next_layers(snap, rec)
        if len(nxt) == 1 and nxt[0].kind == KIND_BATCHNORM:
            hits.append((rec, nxt[0]))
    if not hits:
        return
    groups = [hits] if len(hits) > ctx.opt("max_listed") else [[h] for h in hits]
    for grp in groups:
        rec, bn = grp[0]
        bias = rec.param(ROLE_BIAS)
        n = bias.stats.size if bias is not None else None
        if len(grp) == 1:
            msg = (f"`{rec.name}` adds a bias{f' ({n} values)' if n else ''} that `{bn.name}` removes again by "
                   "subtracting the batch mean (limit: no bias directly before BatchNorm)")
        else:
            msg = (f"{plural(len(grp), 'layer')} add a bias that the BatchNorm right after removes again "
                   f"({name_list([r.name for r, _ in grp])})")
        yield ctx.finding(
            msg, layer=rec.name,
            recommendation="Create the layer without a bias; the BatchNorm's shift replaces it.",
            snippet=ctx.snippet(torch=torch_ctor(rec, bias="False"), keras=keras_ctor(rec, False, use_bias="False")),
            evidence={"pairs": [[r.name, b.name] for r, b in grp]},
        )
