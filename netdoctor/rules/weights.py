"""ND2xx: parameters and their initialization."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, Iterator

from netdoctor.analysis.gradflow import gradient_reaches
from netdoctor.analysis.graph import fused_activation, is_head, matrix_params, norm_after
from netdoctor.analysis.init import activation_family, init_reference, reference_variance, variance_ratio
from netdoctor.findings import Finding, Report, Severity
from netdoctor.rules.format import fmt, name_list, pct
from netdoctor.rules.snippets import keras_ctor, keras_ref, torch_ref
from netdoctor.rules.spec import RuleContext, rule
from netdoctor.snapshot import (
    KIND_ATTENTION,
    KIND_CONV,
    KIND_EMBEDDING,
    KIND_LINEAR,
    KIND_RNN,
    ROLE_EMBEDDING,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
    LayerRecord,
    ModelSnapshot,
    Need,
    ParamRecord,
)
from netdoctor.verify.plan import FixPlan, reinit
from netdoctor.verify.protocol import step

if TYPE_CHECKING:
    from netdoctor.verify.verdict import Measure


def _reinit_snippet(ctx: RuleContext, rec: LayerRecord, p: ParamRecord, snap: ModelSnapshot) -> str | None:
    """Code that gives ``p`` a proper random initialization."""
    w = f"{torch_ref(rec.name)}.{p.name}"
    if p.role == ROLE_RECURRENT:
        return ctx.snippet(torch=f"nn.init.orthogonal_({w})",
                           keras=f'# in the definition of "{rec.name}":\nrecurrent_initializer="orthogonal"')
    if p.role == ROLE_EMBEDDING:
        return ctx.snippet(torch=f"nn.init.normal_({w}, std=1.0)",
                           keras=f'# in the definition of "{rec.name}":\nembeddings_initializer="uniform"')
    _, call, kinit, _ = init_reference(rec.activation)
    keras = keras_ctor(rec, fused_activation(snap, rec), kernel_initializer=f'"{kinit}"') \
        if rec.kind in (KIND_LINEAR, KIND_CONV) else \
        f'# in the definition of "{rec.name}":\nkernel_initializer="{kinit}"'
    return ctx.snippet(torch=call.format(w=w), keras=keras)


def _trainable_matrices(rec: LayerRecord) -> list[ParamRecord]:
    return [p for p in matrix_params(rec) if p.trainable and p.stats.size > 1]


def _reinit_param(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    return FixPlan((reinit(snap, f.layer, f.evidence.get("param")),))


def _first_grad(m: Measure) -> dict[str, Any]:
    """The gradient that reaches the first weight layer (a zero or constant matrix downstream blocks it)."""
    return {f"grad_norm[{m.first}]": m.grad(m.first)} if m.first else {}


def _max_abs_weight(f: Finding, m: Measure) -> dict[str, Any]:
    out: dict[str, Any] = {}
    r = m.rec(f.layer)
    if r is None:
        return out
    p = next((q for q in r.params if q.name == f.evidence.get("param")), r.weight)
    if p is not None:
        out[f"max_abs_weight[{f.layer}]"] = p.stats.abs_max
    return {**out, **_first_grad(m)}


@rule(code="ND201", name="zero-weights", needs={Need.WEIGHTS}, severity=Severity.ERROR, options={},
      fix=_reinit_param, metric=_max_abs_weight)
def zero_weights(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """A weight matrix or kernel of a hidden layer is all zeros.

    ## What it does
    Checks every trainable weight matrix, conv kernel, recurrent kernel and embedding table
    (tensors with at least two dimensions) for being exactly zero. Biases, BatchNorm/LayerNorm
    scales and shifts (1 and 0 by design), per-channel layer-scale parameters (ConvNeXt's 1e-6)
    and class tokens are never looked at. A zero-initialized *final* classifier head is reported
    at info level only: ViT and many fine-tuning recipes zero the head on purpose, the head
    still receives a gradient and the randomly initialized backbone breaks the symmetry.

    ## Why is this bad?
    With ``W_l = 0`` the Jacobian ``dz_l/dz_(l-1) = W_l f'(...)`` is zero: nothing reaches the
    layers below, and every unit of the layer computes the same value (its bias), so all its
    units receive the same update and stay identical forever.

    ## Example
    ```python
    nn.init.zeros_(model.fc1.weight)         # Keras: kernel_initializer="zeros"
    ```

    ## Use instead
    ```python
    nn.init.kaiming_normal_(model.fc1.weight, nonlinearity="relu")
    ```

    ## Options
    None: a zero matrix is never a matter of degree.

    ## References
    - Goodfellow, Bengio, Courville, "Deep Learning" (2016), section 8.4 (breaking symmetry).
    - Dosovitskiy et al., "An Image is Worth 16x16 Words" (2021): zero-initialized head.
    """
    for rec in snap.layers:
        for p in _trainable_matrices(rec):
            if p.stats.frac_nonfinite > 0 or p.stats.abs_max != 0.0:
                continue
            head = is_head(snap, rec)
            shape = "x".join(str(d) for d in p.stats.shape)
            if head:
                msg = (f"`{rec.name}.{p.name}` ({shape}) is all zeros; it is the final head, which some recipes "
                       "zero on purpose, but every gradient below it is exactly zero until the first update")
                sev = Severity.INFO
            elif p.role == ROLE_EMBEDDING or rec.kind == KIND_EMBEDDING:
                msg = f"embedding table `{rec.name}.{p.name}` ({shape}) is all zeros: every token starts as the same vector"
                sev = Severity.WARNING
            else:
                msg = (f"`{rec.name}.{p.name}` ({shape}) is all zeros (max |w| = 0; limit: any non-zero entry): "
                       "no gradient reaches the layers below and its units stay identical")
                sev = None
            yield ctx.finding(
                msg, layer=rec.name, severity=sev,
                recommendation=f"Initialize `{rec.name}` with random weights scaled for its activation.",
                snippet=_reinit_snippet(ctx, rec, p, snap),
                evidence={"param": p.name, "shape": list(p.stats.shape), "head": head, "initializer": p.initializer},
            )


def _duplicate_units(f: Finding, m: Measure) -> dict[str, Any]:
    out: dict[str, Any] = {}
    r = m.rec(f.layer)
    if r is None:
        return out
    p = next((q for q in r.params if q.name == f.evidence.get("param")), r.weight)
    if p is not None:
        out[f"duplicate_units[{f.layer}]"] = 1.0 if p.stats.std == 0 else (p.duplicate_unit_frac or 0.0)
    return {**out, **_first_grad(m)}


@rule(code="ND202", name="symmetric-weights", needs={Need.WEIGHTS}, severity=Severity.ERROR,
      options={"max_duplicate_frac": 0.5}, fix=_reinit_param, metric=_duplicate_units)
def symmetric_weights(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Constant initialization: all weights equal, or units (rows/filters) identical.

    ## What it does
    Flags a trainable weight matrix or kernel whose entries are all equal (but not zero: that
    is ND201), or in which at least ``max_duplicate_frac`` of the units (rows of a dense
    weight, filters of a conv) exactly duplicate another unit. Non-trainable parameters are
    skipped (fixed filters such as a frozen blur kernel are constant on purpose), as are biases,
    normalization parameters and layer-scale vectors. A constant final head is info only: the
    loss gives each output unit its own gradient, so the head itself breaks the tie.

    ## Why is this bad?
    Units that start identical compute identical outputs and receive identical gradients, so
    they stay identical forever: a layer of 64 such units is a layer of one unit.

    ## Example
    ```python
    nn.init.constant_(model.fc1.weight, 0.01)    # Keras: kernel_initializer=Constant(0.01)
    ```

    ## Use instead
    ```python
    nn.init.kaiming_normal_(model.fc1.weight, nonlinearity="relu")
    ```

    ## Options
    - ``max_duplicate_frac`` (default 0.5): fraction of duplicated units from which the layer is
      flagged. Random initializations never produce exact duplicates; one duplicate row can be
      a deliberate copy, half the layer cannot.

    ## References
    - Goodfellow, Bengio, Courville, "Deep Learning" (2016), section 8.4 (breaking symmetry).
    """
    for rec in snap.layers:
        for p in _trainable_matrices(rec):
            st = p.stats
            if st.frac_nonfinite > 0 or st.abs_max == 0.0:
                continue
            head = is_head(snap, rec)
            dup = p.duplicate_unit_frac
            if st.std == 0.0 and st.min == st.max:
                what = f"all {st.size} entries equal {fmt(st.mean, 3)}"
                frac = 1.0
            elif dup is not None and dup >= ctx.opt("max_duplicate_frac") and (p.units or 0) > 1:
                what = (f"{pct(dup)} of its {p.units} units duplicate another unit "
                        f"(limit {pct(ctx.opt('max_duplicate_frac'))})")
                frac = dup
            else:
                continue
            yield ctx.finding(
                f"`{rec.name}.{p.name}`: {what}; identical units get identical gradients and never differentiate",
                layer=rec.name,
                severity=Severity.INFO if head else None,
                recommendation=f"Initialize `{rec.name}` with random weights to break the symmetry.",
                snippet=_reinit_snippet(ctx, rec, p, snap),
                evidence={"param": p.name, "value": st.mean if frac == 1.0 else None, "duplicate_unit_frac": frac,
                          "units": p.units, "head": head, "initializer": p.initializer},
            )


def _reference(rec: LayerRecord, p: ParamRecord) -> tuple[str, float, float, float] | None:
    """(name, canonical variance, lowest sensible variance, highest sensible variance)."""
    fi, fo = p.fan_in, p.fan_out
    if not fi or not fo:
        return None
    name, _, _, gain = init_reference(rec.activation)
    canon = reference_variance(rec.activation, fi, fo)
    # forward-preserving gain/fan_in and backward-preserving gain/fan_out bracket every standard init.
    # He's mode="fan_out" is the convention for conv kernels (torchvision, Keras EfficientNet), so a
    # conv may sit up to gain/fan_out; a dense layer above gain/fan_in amplifies the forward signal.
    lo = min(gain / fi, gain / fo, canon)
    hi = max(gain / fi, canon, gain / fo if rec.kind == KIND_CONV else 0.0)
    return name, canon, lo, hi


def _reinit_layers(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    names = list(f.evidence.get("layers") or [f.layer])
    return FixPlan(tuple(reinit(snap, n) for n in names))


def _variance_ratios(f: Finding, m: Measure) -> dict[str, Any]:
    """Weight variance over the reference, for the first four flagged layers."""
    out: dict[str, Any] = {}
    for name in list(f.evidence.get("layers") or [f.layer])[:4]:
        if m.rec(name) is not None:
            out[f"variance/reference[{name}]"] = variance_ratio(m.rec(name))
    return out


@rule(code="ND203", name="init-scale", needs={Need.WEIGHTS}, severity=Severity.WARNING,
      options={"band": 10.0, "max_listed": 3, "grad_min_relative": 1e-7, "grad_max_drop": 1e-3},
      fix=_reinit_layers, metric=_variance_ratios, chart={"init_band": "band"})
def init_scale(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Weight variance far from the reference for the activation that follows.

    ## What it does
    Compares the second moment of each dense/conv kernel with the variance that keeps signals
    at a constant scale for the activation that follows the layer: He ``2/fan_in`` for the ReLU
    family, Glorot ``2/(fan_in+fan_out)`` for tanh/sigmoid/linear, LeCun ``1/fan_in`` for SELU.
    Because Glorot is itself a compromise between the forward (``gain/fan_in``) and backward
    (``gain/fan_out``) references, a kernel is flagged only when its variance is more than
    ``band`` times below the smaller of the two, or above the forward reference (for conv
    kernels above the larger of the two: ``mode="fan_out"`` is the convention in torchvision and
    Keras' EfficientNet, whose 96->4 squeeze-excitation convs sit at 24x He). So PyTorch's
    default (``1/(3 fan_in)``, 1/6 of He) and Keras' ``glorot_uniform`` under ReLU pass, while
    Keras 2's ``RandomUniform(-0.05, 0.05)`` on narrow layers and ``N(0, 1)`` on wide layers fail.

    Kernels followed by a normalization layer are skipped (BatchNorm/LayerNorm undo any weight
    scale). For the final head a too-large variance is info only (it sets how confident the
    first predictions are; EfficientNet's head sits at 22x Glorot) and a too-small one is not
    reported (small heads such as ``N(0, 0.01)`` start with uniform predictions on purpose), nor
    is a too-small variance in residual networks (BERT's
    ``N(0, 0.02)`` keeps residual branches small at the start; the skip path carries the signal).
    A too-small variance in the dense classifier on top of a conv/recurrent/attention feature
    extractor (only dense layers between it and the head) is info when the probe's gradients
    show that it does no harm: torchvision initializes VGG's hidden classifier layers with
    ``N(0, 0.01)`` on purpose, and a classifier block is too short for the shrinkage to compound.
    The evidence: every trainable weight layer still gets a relative gradient ``|dL/dW|/|W|`` of
    at least ``grad_min_relative`` and at least ``grad_max_drop`` times the best-fed layer's
    (ND301's limits for vanishing gradients). A plain stack of too-small layers stays a warning
    whatever its gradients (``U(±0.05)`` on three 5-unit ReLU layers leaves 5e-6, on eight 1e-12).
    Embeddings, recurrent and attention kernels follow their own conventions and are skipped.

    ## Why is this bad?
    Each layer multiplies the signal scale by about ``sqrt(var * fan_in / gain)``. Ten layers at
    a factor of 0.3 shrink it a hundred-thousand-fold (vanishing gradients); ten at 3 blow it up
    (exploding activations and gradients, saturated sigmoid/tanh).

    ## Example
    ```python
    layers.Dense(5, activation="relu", kernel_initializer=RandomUniform(-0.05, 0.05))
    ```

    ## Use instead
    ```python
    layers.Dense(5, activation="relu", kernel_initializer="he_normal")
    # torch: nn.init.kaiming_normal_(model.fc1.weight, nonlinearity="relu")
    ```

    ## Options
    - ``band`` (default 10.0): allowed factor on the variance (about 3.2 on the standard
      deviation). PyTorch's default under ReLU sits at 1/6 of He, inside the band; ``U(±0.05)``
      on 5-unit ReLU layers sits at 1/480 and ``N(0, 0.25^2)`` on an 800-fan-in conv at 25x.
    - ``max_listed`` (default 3): above this many flagged layers, one finding per direction
      (too small / too large) lists them all.
    - ``grad_min_relative`` (default 1e-7) and ``grad_max_drop`` (default 1e-3): the gradient
      evidence that turns a too-small variance into info (see above); a VGG-style classifier
      with ``N(0, 0.01)`` hidden layers measures 1.4e-5 at its first conv, 0.04x its best layer.

    ## References
    - He et al., "Delving Deep into Rectifiers" (2015).
    - Glorot & Bengio, "Understanding the difficulty of training deep feedforward networks" (2010).
    - Klambauer et al., "Self-Normalizing Neural Networks" (2017) for LeCun/SELU.
    """
    band = float(ctx.opt("band"))
    residual = snap.residual is True
    # gradient_reaches() once, and only for a too-small classifier layer
    reach = functools.cache(lambda: gradient_reaches(snap, ctx.opt("grad_min_relative"), ctx.opt("grad_max_drop")))

    hits: list[dict] = []
    for rec in snap.layers:
        if rec.kind not in (KIND_LINEAR, KIND_CONV):
            continue
        p = rec.param(ROLE_WEIGHT)
        if p is None or not p.trainable or p.stats.frac_nonfinite > 0 or p.stats.std == 0.0:
            continue  # zero/constant/nonfinite kernels are ND201/ND202/ND204
        ref = _reference(rec, p)
        if ref is None or norm_after(snap, rec) is not None:
            continue
        name, canon, lo, hi = ref
        var = p.stats.mean ** 2 + p.stats.std ** 2
        head = is_head(snap, rec)
        if var > hi * band:
            direction = "large"
        elif var < lo / band and not head and not residual:
            direction = "small"
        else:
            continue
        hits.append({"rec": rec, "p": p, "name": name, "canon": canon, "lo": lo / band, "hi": hi * band,
                     "var": var, "ratio": var / canon, "direction": direction, "head": head,
                     "weakest": reach() if direction == "small" and _classifier_block(snap, rec) else None})
    many = len(hits) > ctx.opt("max_listed")
    groups = [[h for h in hits if h["direction"] == d] for d in ("small", "large")] if many else [[h] for h in hits]
    for grp in (g for g in groups if g):
        h = grp[0]
        rec, p, name = h["rec"], h["p"], h["name"]
        act = rec.activation or "linear"
        formula = {"He": "2/fan_in", "LeCun": "1/fan_in", "Glorot": "2/(fan_in+fan_out)"}[name]
        init_txt = f" ({p.initializer})" if p.initializer else ""
        msg = (f"`{rec.name}` weight variance {fmt(h['var'])}{init_txt} is {fmt(h['ratio'])}x the {name} reference "
               f"{formula} = {fmt(h['canon'])} for the {act} that follows (fan_in {p.fan_in}, fan_out {p.fan_out}; "
               f"allowed {fmt(h['lo'])} to {fmt(h['hi'])})")
        if len(grp) > 1:
            ratios = [g["ratio"] for g in grp]
            msg = (f"{len(grp)} layers have weight variance {fmt(min(ratios))}x to {fmt(max(ratios))}x their "
                   f"He/Glorot/LeCun reference ({name_list([g['rec'].name for g in grp])}); first: " + msg)
        snippet = _reinit_snippet(ctx, rec, p, snap)
        if len(grp) > 1:
            snippets = [_reinit_snippet(ctx, g["rec"], g["p"], snap) or "" for g in grp[:4]]
            more = "" if len(grp) <= 4 else f"\n# ... and the other {len(grp) - 4} layers"
            snippet = ("\n" if ctx.framework != "keras" else ",\n").join(snippets) + more
        head_only = all(g["head"] for g in grp)
        harmless = all(g["head"] or g["weakest"] is not None for g in grp)
        if head_only:
            msg += "; it is the head, whose scale only sets how confident the first predictions are"
        elif harmless:
            weak = min((g["weakest"] for g in grp if g["weakest"] is not None), key=lambda r: r.rel)
            msg += (f"; it belongs to the dense classifier on top of the feature extractor and gradients still "
                    f"reach every weight layer (relative gradient |dL/dW|/|W| at least "
                    f"{fmt(weak.rel)}, at `{weak.name}`; vanishing below {fmt(ctx.opt('grad_min_relative'))} or "
                    f"{fmt(ctx.opt('grad_max_drop'))}x the best layer), so the small scale only damps the first "
                    "updates")
        yield ctx.finding(
            msg,
            layer=rec.name,
            severity=Severity.INFO if head_only or harmless else None,
            recommendation=(f"Initialize `{rec.name}` with {name} initialization for its {act} activation."
                            if len(grp) == 1 else "Initialize these layers with the reference for their activation."),
            snippet=snippet,
            evidence={"variance": h["var"], "std": math.sqrt(h["var"]), "reference": name,
                      "reference_variance": h["canon"], "ratio": h["ratio"], "allowed": [h["lo"], h["hi"]],
                      "fan_in": p.fan_in, "fan_out": p.fan_out, "activation": act,
                      "activation_family": activation_family(rec.activation), "initializer": p.initializer,
                      "direction": h["direction"], "layers": {g["rec"].name: g["ratio"] for g in grp},
                      "gradients_reach": harmless and not head_only},
        )


def _classifier_block(snap: ModelSnapshot, rec: LayerRecord) -> bool:
    """A dense layer of the classifier on top of a conv/recurrent/attention feature extractor:
    only dense layers follow it up to the head (VGG's ``classifier``)."""
    if rec.kind != KIND_LINEAR:
        return False
    layers = snap.weight_layers(executed_only=True)
    names = [r.name for r in layers]
    if rec.name not in names:
        return False
    i = names.index(rec.name)
    return any(r.kind in (KIND_CONV, KIND_RNN, KIND_ATTENTION) for r in layers[:i]) and \
        all(r.kind == KIND_LINEAR for r in layers[i:])


def _reset_nonfinite(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    return FixPlan((step("reset_nonfinite", f.layer),))


def _nonfinite_frac(f: Finding, m: Measure) -> dict[str, Any]:
    r = m.rec(f.layer)
    if r is None:
        return {}
    return {f"nonfinite_frac[{f.layer}]": max((q.stats.frac_nonfinite for q in r.params), default=0.0),
            **_first_grad(m)}


@rule(code="ND204", name="nonfinite-weights", needs={Need.WEIGHTS}, severity=Severity.ERROR, options={},
      fix=_reset_nonfinite, metric=_nonfinite_frac)
def nonfinite_weights(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """NaN or Inf values in parameters or buffers.

    ## What it does
    Checks every parameter and buffer (BatchNorm running mean/variance included) of every
    layer for non-finite values, and reports one finding per layer.

    ## Why is this bad?
    A NaN weight makes every output that depends on it NaN; a NaN running variance breaks
    inference while training still looks fine. It usually means a checkpoint saved after the
    training diverged, or a corrupted file.

    ## Example
    ```python
    model.load_state_dict(torch.load("last.pt"))   # saved after the loss became NaN
    ```

    ## Use instead
    ```python
    model.load_state_dict(torch.load("best.pt"))   # a checkpoint from before the divergence
    ```

    ## Options
    None: one non-finite value is already fatal.

    ## References
    - PyTorch ``torch.autograd.detect_anomaly``; Keras ``callbacks.TerminateOnNaN``.
    """
    for rec in snap.layers:
        bad = [p for p in rec.params if p.stats.frac_nonfinite > 0]
        if not bad:
            continue
        parts = [f"`{p.name}` {pct(p.stats.frac_nonfinite)} of {p.stats.size}" for p in bad]
        counts = {p.name: int(round(p.stats.frac_nonfinite * p.stats.size)) for p in bad}
        yield ctx.finding(
            f"`{rec.name}` holds NaN/Inf values: {', '.join(parts)} (limit 0)",
            layer=rec.name,
            recommendation="Reload a checkpoint saved before training diverged, or re-initialize this layer.",
            snippet=ctx.snippet(
                torch=(f"{torch_ref(rec.name)}.reset_parameters()  # or load an earlier checkpoint\n"
                       "assert all(torch.isfinite(t).all() for t in model.state_dict().values())"),
                keras=(f"# reload weights saved before the divergence, then verify:\n"
                       f"assert all(np.isfinite(w).all() for w in {keras_ref(rec.name)}.get_weights())"),
            ),
            evidence={"params": counts, "fractions": {p.name: p.stats.frac_nonfinite for p in bad}},
        )
