"""Measurement helpers of the ND3xx gradient rules (split out of ``gradients.py`` to keep it short).

``gradient_chain`` gives each weight layer's relative gradient (``gradient_reaches``: whether it
reaches every layer without vanishing); ``zero_grad_causes`` explains
exactly-zero gradients (zero heads, zero-initialized residual scales, dead layers, cut graphs);
``nonfinite_origin`` locates where NaN/Inf first appears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from netdoctor.rules._util import (
    activation_family,
    batchnorm_snippet,
    fmt,
    fused_activation,
    has_dataflow,
    has_zero_scale,
    init_reference,
    is_head,
    keras_ctor,
    keras_ref,
    matrix_params,
    name_list,
    next_layers,
    pct,
    relative_grad,
    torch_ref,
)
from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_EMBEDDING,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
    LayerRecord,
    ModelSnapshot,
    Need,
    ParamRecord,
)

if TYPE_CHECKING:
    from netdoctor.rules.spec import RuleContext


@dataclass(frozen=True)
class GradRow:
    """One weight layer's gradient measurement."""

    name: str
    rec: LayerRecord
    param: ParamRecord
    grad: float      # |dL/dW|
    weight: float    # |W|
    ref_norm: float  # max(|W|, norm of a unit-gain init of the same shape)
    rel: float       # grad / ref_norm


def gradient_chain(snap: ModelSnapshot) -> list[GradRow]:
    """Weight layers (embeddings excluded) with a finite, non-zero weight gradient, in execution order."""
    rows: list[GradRow] = []
    for rec in snap.weight_layers():
        p = rec.param(ROLE_WEIGHT) or rec.param(ROLE_RECURRENT)
        if rec.kind == KIND_EMBEDDING or p is None or not p.trainable or p.grad is None:
            continue
        g = float(p.grad.l2)
        rel = relative_grad(p)
        if p.grad.frac_nonfinite > 0 or not 0 < g < math.inf or not rel:
            continue
        rows.append(GradRow(rec.name, rec, p, g, float(p.stats.l2), g / rel, rel))
    return rows


def gradient_reaches(snap: ModelSnapshot, min_relative: float, max_drop: float) -> GradRow | None:
    """The weakest-fed weight layer when the probe gradient reaches every trainable weight layer
    without vanishing (relative gradient at least ``min_relative`` and at least ``max_drop`` times
    the best-fed layer's), else ``None`` (also when gradients were not measured)."""
    if not snap.has(Need.GRADIENTS):
        return None
    chain = gradient_chain(snap)
    fed = {r.name for r in chain}
    for rec in snap.weight_layers(executed_only=True):
        p = rec.param(ROLE_WEIGHT) or rec.param(ROLE_RECURRENT)
        if rec.kind != KIND_EMBEDDING and p is not None and p.trainable and rec.name not in fed:
            return None  # a layer gets no (finite) gradient at all
    if not chain:
        return None
    weakest = min(chain, key=lambda r: r.rel)
    if weakest.rel < min_relative or weakest.rel < max_drop * max(r.rel for r in chain):
        return None
    return weakest


def vanishing_fix(snap: ModelSnapshot, ctx: RuleContext, chain: list[GradRow]) -> tuple[str, str | None]:
    """Recommendation and snippet for vanishing gradients, chosen from the likely cause."""
    hidden = [r.rec for r in chain[:-1]]
    sat = [r for r in hidden if activation_family(r.activation) == "saturating"]
    if len(sat) * 2 >= len(hidden):
        return ("Use ReLU with He initialization in the hidden layers, or put a BatchNorm before each "
                f"{(sat or hidden)[0].activation}.", batchnorm_snippet(ctx, hidden[0], act="relu"))
    small = []
    for r in hidden:
        p = r.param(ROLE_WEIGHT)
        if p is not None and p.fan_in and p.stats.mean ** 2 + p.stats.std ** 2 < init_reference(r.activation)[3] / p.fan_in / 10:
            small.append(r)
    if small:
        name, call, kinit, _ = init_reference(small[0].activation)
        more = "" if len(small) <= 4 else f"\n# ... and {len(small) - 4} more layers"
        return (f"Initialize the hidden layers with {name} initialization; their weights are too small.",
                ctx.snippet(torch="\n".join(call.format(w=f"{torch_ref(r.name)}.weight") for r in small[:4]) + more,
                            keras=",\n".join(keras_ctor(r, fused_activation(snap, r), kernel_initializer=f'"{kinit}"')
                                             for r in small[:4]) + more))
    return ("Insert BatchNorm after the hidden weight layers or add residual connections.",
            batchnorm_snippet(ctx, hidden[0]))


def nonfinite_origin(snap: ModelSnapshot) -> tuple[str | None, str]:
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
        if snap.loss is not None and math.isnan(snap.loss.value) and out.stats.min < 0:
            return None, (f"the model output is finite but reaches {out.stats.min:.3g}, so the loss itself makes the "
                          "NaN: the log of a negative output (a probability loss fed with logits?)")
        return None, "the model output is finite, so the loss itself overflows (log(0) in a probability loss?)"
    return None, "its origin could not be located from the forward statistics"


@dataclass
class ZeroGradCause:
    """Layers with exactly zero gradient that share one explanation."""

    key: str
    reason: str
    by_construction: bool
    recommendation: str
    torch: str | None = None
    keras: str | None = None
    layers: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)


def _blocking(r: LayerRecord) -> str | None:
    """``"scale"``, ``"weights"`` or ``"dead"`` when ``r`` zeroes every gradient through it."""
    w, ua = r.weight, r.unit_active
    if has_zero_scale(r):
        return "scale"
    if r.is_weight_layer and w is not None and w.stats.size and w.stats.abs_max == 0.0:
        return "weights"
    if r.kind == KIND_ACTIVATION and ua is not None and len(ua) and float(np.max(ua)) == 0.0 \
            and (r.input is None or r.input.abs_max > 0):  # all-zero input: the cause lies further up
        return "dead"
    return None


def _blocker(snap: ModelSnapshot, rec: LayerRecord, zero: set[str]) -> tuple[str, LayerRecord] | None:
    """What downstream of ``rec`` zeroes its gradient, walking until a layer that gets gradient."""
    flow = has_dataflow(snap)
    seen = {rec.name}
    frontier = next_layers(snap, rec)
    for _ in range(64):
        nxt: list[LayerRecord] = []
        for r in frontier:
            if r.name in seen:
                continue
            seen.add(r.name)
            kind = _blocking(r)
            if kind is not None:
                return kind, r
            if (r.is_weight_layer and r.name not in zero) or (flow and len(r.inputs_from) >= 2):
                continue  # reaches a layer that learns, or a merge whose other operand carries gradient
            nxt.extend(next_layers(snap, r))
        frontier = nxt
    return None


def _upstream_blocker(snap: ModelSnapshot, rec: LayerRecord) -> tuple[str, LayerRecord] | None:
    """Why ``rec``'s input is all zeros: the nearest zero scale, zero weights or dead layer upstream."""
    by_name = {r.name: r for r in snap.layers}
    order = [r.name for r in snap.layers]
    flow = has_dataflow(snap)
    frontier, seen = [rec], {rec.name}
    for _ in range(32):
        nxt: list[LayerRecord] = []
        for cur in frontier:
            i = order.index(cur.name)
            prev = list(cur.inputs_from) if cur.inputs_from else ([order[i - 1]] if i > 0 and not flow else [])
            for r in (by_name[n] for n in prev if n in by_name and n not in seen):
                seen.add(r.name)
                kind = _blocking(r)
                if kind is not None:
                    return kind, r
                nxt.append(r)
        frontier = nxt
    return None


_UPSTREAM = {
    "scale": ("its input is all zeros because of the zero-initialized scale `{b}` (deliberate in zero_init_residual "
              "designs; learns after the first update)", True, "Nothing to fix if the zero scale is deliberate."),
    "weights": ("its input is all zeros because `{b}` has all-zero weights (see ND201)", True,
                "Initialize `{b}` randomly (see ND201)."),
    "dead": ("its input is all zeros because every unit of `{b}` is dead on this batch (see ND401)", False,
             "Revive the dead ReLU layer `{b}` (see ND401)."),
}


def fused_parent(snap: ModelSnapshot, rec: LayerRecord) -> LayerRecord | None:
    """The executed weight layer whose fused kernel runs ``rec`` (``MultiheadAttention.out_proj``,
    the dense layers inside a Keras ``MultiHeadAttention``), when ``rec`` itself never ran."""
    if rec.executed:
        return None
    by_name = {r.name: r for r in snap.layers}
    name = rec.name
    while True:
        cut = max(name.rfind("."), name.rfind("/"))
        if cut <= 0:
            return None
        name = name[:cut]
        parent = by_name.get(name)
        if parent is not None:
            return parent if parent.is_weight_layer and parent.executed else None


def _zero_head(snap: ModelSnapshot) -> LayerRecord | None:
    """The final head, when its weight matrix is all zeros."""
    head = snap.output_layer
    return head if head is not None and _blocking(head) == "weights" else None


def _feeds(snap: ModelSnapshot, rec: LayerRecord, target: LayerRecord) -> bool:
    """Whether ``rec``'s output reaches ``target`` (traced data flow, else execution order)."""
    if not has_dataflow(snap):
        names = [r.name for r in snap.layers]
        return names.index(rec.name) < names.index(target.name)
    by_name = {r.name: r for r in snap.layers}
    frontier, seen = list(target.inputs_from), set()
    while frontier:
        n = frontier.pop()
        if n == rec.name:
            return True
        if n in seen or n not in by_name:
            continue
        seen.add(n)
        frontier.extend(by_name[n].inputs_from)
    return False


def _cause_for(snap: ModelSnapshot, rec: LayerRecord, zero: set[str]) -> tuple[ZeroGradCause, str | None]:
    parent = fused_parent(snap, rec)
    if parent is not None and parent.name in zero:  # run inside its parent's kernel: the parent's cause
        return _cause_for(snap, parent, zero)
    found = ("weights", rec) if _blocking(rec) == "weights" and not is_head(snap, rec) else _blocker(snap, rec, zero)
    head = _zero_head(snap)
    if found is None and head is not None and rec.executed and _feeds(snap, rec, head):
        found = ("weights", head)  # merges (residual adds) stop the walk, but every path ends in the zero head
    if found is None and rec.input is not None and rec.input.abs_max == 0.0:
        up = _upstream_blocker(snap, rec)  # its input is all zeros: the cause is upstream
        if up is not None:
            why, built, fix = _UPSTREAM[up[0]]
            return ZeroGradCause(f"zero-input:{up[1].name}", why.format(b=up[1].name), built,
                                 fix.format(b=up[1].name)), None
    kind, blk = found if found is not None else ("", None)
    if kind == "scale":
        return ZeroGradCause("zero-scale", "upstream of a zero-initialized scale closing a residual branch ({}): the "
                             "branch starts as the identity on purpose (zero_init_residual) and learns after the first "
                             "update", True, "Nothing to fix if the zero scale is deliberate."), blk.name
    if kind == "weights" and is_head(snap, blk):
        return ZeroGradCause(f"zero-head:{blk.name}", f"the final head `{blk.name}` is all zeros, so every gradient "
                             "below it is exactly zero until the head's first update (deliberate in ViT-style heads; "
                             "see ND201)", True, "Nothing to fix if the zero head is deliberate; otherwise initialize "
                             "it randomly."), None
    if kind == "weights":
        return ZeroGradCause(f"zero-weights:{blk.name}", f"`{blk.name}` has all-zero weights, so no gradient flows "
                             "back through it, and a ReLU after it passes none into it (see ND201)", True,
                             f"Initialize `{blk.name}` randomly (see ND201)."), None
    if kind == "dead":
        return ZeroGradCause(f"dead:{blk.name}", f"every unit of `{blk.name}` is dead on this batch (see ND401)",
                             False, "Revive the dead ReLU layer (see ND401)."), None
    why = ("never ran in the forward pass (defined but not used)" if not rec.executed else
           "the graph is cut on the way to the loss: a .detach(), .item(), numpy round-trip, stop_gradient or "
           "integer cast after the layer")
    return ZeroGradCause("cut" if rec.executed else "unused", why, False,
                         "Connect the layer to the loss, or freeze it explicitly if it is meant not to learn.",
                         f"{torch_ref(rec.name)}.requires_grad_(False)  # only if it must not learn",
                         f"{keras_ref(rec.name)}.trainable = False  # only if it must not learn"), None


def zero_grad_causes(snap: ModelSnapshot) -> list[ZeroGradCause]:
    """Trainable weight layers with exactly zero gradient, grouped by cause."""
    with_grad, zero = [], []
    for rec in snap.weight_layers():
        ps = [p for p in matrix_params(rec) if p.trainable and p.grad is not None]
        if ps:
            with_grad.append(rec)
            if all(p.grad.l2 == 0 and p.grad.frac_nonfinite == 0 for p in ps):
                zero.append(rec)
    names = [r.name for r in zero]
    out = snap.output
    everything = len(zero) > 1 and len(zero) == len(with_grad)
    units = int(out.stats.shape[-1]) if out is not None and len(out.stats.shape) >= 2 else 1
    if everything and out is not None and units == 1 and (
            out.final_activation == "softmax" or out.looks_like == "probabilities"):
        c = ZeroGradCause("softmax-single-unit", "the output is a softmax over a single unit, which is always 1.0, "
                          "so the loss does not depend on any weight (see ND503)", True,
                          "Replace the single-unit softmax with a sigmoid (see ND503).")
        c.layers.extend(names)
        return [c]
    groups: dict[str, ZeroGradCause] = {}
    for rec in zero:
        cause, blocker = _cause_for(snap, rec, set(names))
        g = groups.setdefault(cause.key, cause)
        g.layers.append(rec.name)
        if blocker and blocker not in g.blockers:
            g.blockers.append(blocker)
    loss = snap.loss
    if everything and set(groups) <= {"cut", "unused"} and out is not None and loss is not None \
            and loss.expects == "probabilities" and (out.stats.min < 0 or out.stats.max > 1):
        c = ZeroGradCause("clipped-probabilities", f"{loss.name} expects probabilities and clips the outputs, which "
                          f"lie in [{out.stats.min:.3g}, {out.stats.max:.3g}], so the clipped loss is flat (see ND503)",
                          True, "Give the loss probabilities (sigmoid/softmax output) or use its logits version "
                          "(see ND503).")
        c.layers.extend(names)
        return [c]
    if everything and set(groups) <= {"cut", "unused"}:
        c = ZeroGradCause("disconnected-loss", "no trainable parameter reaches the loss: the output is constant or "
                          "detached from the graph, or the loss ignores it", False,
                          "Compute the loss from the model output without .detach(), .item(), numpy round-trips "
                          "or stop_gradient.")
        c.layers.extend(names)
        return [c]
    for g in groups.values():
        if g.blockers:
            g.reason = g.reason.format(name_list(g.blockers))
    return list(groups.values())


def surrogate_loss(snap: ModelSnapshot) -> bool:
    return snap.loss is not None and snap.loss.source == "surrogate"


def loss_text(snap: ModelSnapshot) -> str:
    if snap.loss is None:
        return ""
    src = {"surrogate": " (surrogate loss: no targets were given)", "default": " (netdoctor's default loss)"}
    return f"; probe loss {snap.loss.name} = {fmt(snap.loss.value)}{src.get(snap.loss.source, '')}"


def chain_evidence(chain: list[GradRow]) -> dict:
    return {
        "grad_norms": {r.name: r.grad for r in chain},
        "weight_norms": {r.name: r.weight for r in chain},
        "relative_grads": {r.name: r.rel for r in chain},
    }


def depth_window(chain: list[GradRow]) -> int:
    return max(1, math.ceil(len(chain) / 4))
