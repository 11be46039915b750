"""Why a trainable layer gets exactly zero gradient: the causes ND304 reports, grouped.

Zeros by construction (a zero-initialized head or residual scale, zero weights downstream, a
single-unit softmax) are told apart from real faults (a layer never used, a cut graph, a dead
layer in the way); each cause carries the sentence and snippets ND304 recommends.
"""

from __future__ import annotations

import re
from typing import Callable
from dataclasses import dataclass, field

import numpy as np

from netdoctor.analysis.graph import has_dataflow, has_zero_scale, is_head, matrix_params, next_layers
from netdoctor.rules._targets import categorical_name
from netdoctor.rules.format import name_list
from netdoctor.rules.snippets import keras_ref, torch_ref
from netdoctor.snapshot import KIND_ACTIVATION, LayerRecord, ModelSnapshot

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
    evidence: dict = field(default_factory=dict)


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


def _fused_parent(snap: ModelSnapshot, rec: LayerRecord) -> LayerRecord | None:
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


def _ran(rec: LayerRecord) -> bool:
    """The layer ran: its hook fired, or (inside an untraced Keras layer) its calls were observed."""
    return rec.executed or bool(rec.attrs.get("observed_calls"))


_SUFFIXED = re.compile(r"(.+)_(\d+)")


def _copy_index(comp: str) -> tuple[str, int] | None:
    """``(base, index)`` of a path component naming one of several copies: ``"3"`` (a torch ModuleList) or
    ``"expert_3"``/``"dense_7"`` (Keras names a layer's copies by a numeric suffix)."""
    if comp.isdigit():
        return "", int(comp)
    m = _SUFFIXED.fullmatch(comp)
    return (m[1], int(m[2])) if m else None


def _same_copy_path(a: list[str], b: list[str]) -> bool:
    """The paths inside two copies match, up to Keras' numeric name suffixes (``dense_5`` in one expert,
    ``dense_7`` in the next)."""
    return len(a) == len(b) and all(x == y or ((cx := _copy_index(x)) is not None and (cy := _copy_index(y))
                                               is not None and cx[0] == cy[0]) for x, y in zip(a, b))


def _siblings(snap: ModelSnapshot, rec: LayerRecord,
              ok: Callable[[LayerRecord], bool] = _ran) -> tuple[str, list[LayerRecord]] | None:
    """Weight layers that differ from ``rec`` only in one numbered path component (``experts.3.0`` vs
    ``experts.5.0``, Keras' ``moe/expert_3/dense_7`` vs ``moe/expert_5/dense_11``), of which at least one
    is ``ok`` (default: ran): the pattern (``experts.*.0``) and the siblings, ``rec`` included. The
    innermost such component wins."""
    parts = rec.name.replace("/", ".").split(".")
    for i in range(len(parts) - 1, -1, -1):
        own = _copy_index(parts[i])
        if own is None:
            continue
        sibs = []
        for r in snap.weight_layers():
            q = r.name.replace("/", ".").split(".")
            ci = _copy_index(q[i]) if len(q) == len(parts) else None
            if ci is not None and ci[0] == own[0] and q[:i] == parts[:i] and _same_copy_path(q[i + 1:], parts[i + 1:]):
                sibs.append(r)
        if len(sibs) >= 2 and any(ok(r) for r in sibs):
            return ".".join(parts[:i] + ["*"] + parts[i + 1:]), sibs
    return None


def _copies(snap: ModelSnapshot, rec: LayerRecord, ok: Callable[[LayerRecord], bool] = _ran,
            ) -> tuple[str, str, dict[str, list[LayerRecord]]] | None:
    """The parallel copies ``rec`` is part of (see :func:`_siblings`, with ``ok``): the group
    pattern (``experts.*``), ``rec``'s copy (``"3"``) and each copy's weight layers."""
    found = _siblings(snap, rec, ok)
    if found is None:
        return None
    pattern, _ = found
    i = pattern.split(".").index("*")
    prefix = pattern.split(".")[:i]
    own = rec.name.replace("/", ".").split(".")[i]
    base = _copy_index(own)
    copies: dict[str, list[LayerRecord]] = {}
    for r in snap.weight_layers():
        q = r.name.replace("/", ".").split(".")
        ci = _copy_index(q[i]) if len(q) > i else None
        if ci is not None and base is not None and ci[0] == base[0] and q[:i] == prefix:
            copies.setdefault(q[i], []).append(r)
    return ".".join(prefix + ["*"]), own, copies


def _masked_out(snap: ModelSnapshot, rec: LayerRecord, zero: set[str]) -> ZeroGradCause | None:
    """``rec`` ran with a zero gradient while parallel copies of it got one: their outputs are weighted
    by a routing mask or gate that was zero for its copy on every sample (a mixture-of-experts
    computed densely, every expert on every row)."""
    def fed_layer(r: LayerRecord) -> bool:
        return _ran(r) and r.name not in zero

    found = _copies(snap, rec, fed_layer) if _ran(rec) else None
    if found is None:
        return None
    group, own, copies = found
    if group == "*" or len({tuple(rs[0].inputs_from) for rs in copies.values()}) > 1:
        return None  # layers of one stack in series (nn.Sequential's 0, 2, ...), not copies fed the same input
    fed = [k for k, rs in copies.items() if any(fed_layer(r) for r in rs)]
    idle = sorted((k for k, rs in copies.items() if k not in fed and all(_ran(r) for r in rs)),
                  key=lambda k: _copy_index(k)[1])
    if not fed or own not in idle:
        return None
    cause = ZeroGradCause(
        f"masked:{group}",
        f"ran on all {snap.batch_size} samples of the batch but got no gradient, while {len(fed)} of the "
        f"{len(copies)} parallel copies `{group}` got one ({len(idle)} without: {', '.join(idle[:8])}"
        f"{'...' if len(idle) > 8 else ''}): their outputs are weighted by a routing mask or gate that was zero "
        "for these copies on every sample (a mixture-of-experts computed densely, with 0/1 or top-k masks), "
        "or the graph is cut inside these copies only", True,
        "Check the routing over several batches: an expert the mask drops on every batch needs a load-balancing "
        "loss or a capacity factor; dropped on one batch is normal and becomes rarer with larger batches.")
    cause.evidence = {"pattern": group, "copies": len(copies), "fed": len(fed), "idle": idle}
    return cause


def _not_routed(snap: ModelSnapshot, rec: LayerRecord) -> ZeroGradCause | None:
    """``rec`` did not run, but parallel copies of it did: a router sent no sample to it on this batch."""
    found = None if _ran(rec) else _copies(snap, rec)
    if found is None:
        return None
    group, _, copies = found
    ran = {k: rs for k, rs in copies.items() if any(_ran(r) for r in rs)}
    rows = {}
    for k, rs in ran.items():
        first = next(r for r in rs if _ran(r))
        if first.input is not None and first.input.shape:
            rows[k] = int(first.input.shape[0])
        elif first.attrs.get("rows") is not None:  # observed inside an untraced Keras layer
            rows[k] = int(first.attrs["rows"])
    # routing shows as copies that each saw a different share of the batch; a loop over a prefix of a
    # ModuleList (layers[:3]) feeds every copy the whole batch and leaves the rest truly unused
    if not rows or (len(set(rows.values())) < 2 and min(rows.values()) >= snap.batch_size):
        return None
    idle = sorted((k for k in copies if k not in ran), key=lambda k: _copy_index(k)[1])
    cause = ZeroGradCause(
        f"not-routed:{group}",
        f"did not run on this batch of {snap.batch_size} samples, while {len(ran)} of the {len(copies)} parallel "
        f"copies `{group}` did on {'/'.join(str(v) for v in rows.values())} rows each ({len(idle)} idle: "
        f"{', '.join(idle[:8])}{'...' if len(idle) > 8 else ''}): the "
        "routing sent no sample to them (conditional computation, e.g. top-k mixture-of-experts), which is not the "
        "same as never being called", True,
        "Check the routing over several batches: an expert idle on every batch needs a load-balancing loss or a "
        "capacity factor; idle on one batch is normal and becomes rarer with larger batches.")
    cause.evidence = {"pattern": group, "copies": len(copies), "ran": len(ran), "idle": idle, "rows_per_copy": rows}
    return cause


def _on_main_path(snap: ModelSnapshot, rec: LayerRecord) -> bool:
    """``rec``'s output reaches the model output through no merge (it is not inside a residual branch)."""
    out = snap.output
    targets = {n for n in (out.final_layer if out else None,
                           snap.output_layer.name if snap.output_layer else None) if n}
    if rec.name in targets:
        return True
    if not has_dataflow(snap):
        return False
    frontier, seen = next_layers(snap, rec), {rec.name}
    while frontier:
        nxt: list[LayerRecord] = []
        for r in frontier:
            if r.name in seen:
                continue
            seen.add(r.name)
            if len(set(r.inputs_from)) >= 2:
                continue  # a merge: the other operand carries the signal past the zero scale
            if r.name in targets:
                return True
            nxt.extend(next_layers(snap, r))
        frontier = nxt
    return False


def _main_path_zero_scale(snap: ModelSnapshot) -> LayerRecord | None:
    """A zero scale on the path to the output, when the output is indeed constant over the batch."""
    out = snap.output
    if out is None or out.stats.std != 0.0 or out.stats.frac_nonfinite:
        return None
    for rec in reversed(snap.layers):
        if has_zero_scale(rec) and _on_main_path(snap, rec):
            return rec
    return None


def _data_all_zero(snap: ModelSnapshot) -> bool:
    """Whether every input of the probe batch is all zeros."""
    inputs = snap.data.inputs if snap.data is not None else {}
    return bool(inputs) and all(st.abs_max == 0.0 for st in inputs.values())


def _cause_for(snap: ModelSnapshot, rec: LayerRecord, zero: set[str]) -> tuple[ZeroGradCause, str | None]:
    routed = _not_routed(snap, rec)
    if routed is not None:
        return routed, None
    parent = _fused_parent(snap, rec)
    if parent is not None and parent.name in zero:  # run inside its parent's kernel: the parent's cause
        return _cause_for(snap, parent, zero)
    found = ("weights", rec) if _blocking(rec) == "weights" and not is_head(snap, rec) else _blocker(snap, rec, zero)
    head = _zero_head(snap)
    if found is None and head is not None and rec.executed and _feeds(snap, rec, head):
        found = ("weights", head)  # merges (residual adds) stop the walk, but every path ends in the zero head
    masked = _masked_out(snap, rec, zero) if found is None else None
    if masked is not None:
        return masked, None
    if found is None and rec.input is not None and rec.input.abs_max == 0.0:
        up = _upstream_blocker(snap, rec)  # its input is all zeros: the cause is upstream
        if up is not None:
            why, built, fix = _UPSTREAM[up[0]]
            return ZeroGradCause(f"zero-input:{up[1].name}", why.format(b=up[1].name), built,
                                 fix.format(b=up[1].name)), None
        if _data_all_zero(snap):
            return ZeroGradCause(
                "zero-data", "its input is all zeros because the probe batch itself is all zeros (a placeholder such "
                "as `example_input_array = torch.zeros(...)`?), so dL/dW = x^T.delta is exactly zero: the layer is "
                "fine, the probe data is not", False,
                "Check with real inputs: a data function or DataLoader in the file, --data, or --input-shape for "
                "synthetic ones."), None
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
    loss = snap.loss
    if everything and out is not None and units == 1 and loss is not None and categorical_name(loss.name):
        c = ZeroGradCause("ce-single-unit", f"{loss.name} over a single output unit normalizes one class, whose "
                          "probability is always 1, so the loss does not depend on any weight (see ND503)", True,
                          "Train a regression with MSE on a linear head, or a binary target with "
                          "BCEWithLogitsLoss (see ND503).")
        c.layers.extend(names)
        return [c]
    groups: dict[str, ZeroGradCause] = {}
    for rec in zero:
        cause, blocker = _cause_for(snap, rec, set(names))
        g = groups.setdefault(cause.key, cause)
        g.layers.append(rec.name)
        if blocker and blocker not in g.blockers:
            g.blockers.append(blocker)
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
    main = _main_path_zero_scale(snap)
    if main is not None:
        by_scale = [k for k in groups if k == "zero-scale" or k == f"zero-input:{main.name}"
                    or (k.startswith("zero-input:") and "zero-initialized scale" in groups[k].reason)]
        if by_scale:
            value = out.stats.mean if out is not None else 0.0
            c = ZeroGradCause(
                f"zero-gain:{main.name}",
                f"the all-zero scale (gain) of `{main.name}` sits on the path to the output, not in a residual "
                f"branch: every output is {value:.3g} on every sample, so no gradient reaches any layer below it "
                "(a zero-initialized residual scale is deliberate; a zero gain on the main path is a fault)", False,
                f"Initialize the gain of `{main.name}` (and of the other normalization layers) to ones.",
                f"nn.init.ones_({torch_ref(main.name)}.weight)",
                f'{keras_ref(main.name)}.gamma.assign(keras.ops.ones_like({keras_ref(main.name)}.gamma))')
            c.evidence = {"zero_scale": main.name, "output_std": 0.0, "output_value": value}
            for k in by_scale:
                c.layers.extend(groups.pop(k).layers)
            groups = {c.key: c, **groups}
    for g in groups.values():
        if g.blockers:
            g.reason = g.reason.format(name_list(g.blockers))
    return list(groups.values())
