"""Readings of the layer graph of a snapshot: data flow, heads, normalization, weight matrices.

Shared by the rules, the fix plans of :mod:`netdoctor.verify` and the reports. Each function reads
a :class:`~netdoctor.snapshot.ModelSnapshot` (the traced ``inputs_from`` data flow when the adapter
recorded it, else execution order); nothing here imports a framework.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_DROPOUT,
    KIND_OTHER,
    KIND_POOL,
    KIND_PREPROCESS,
    KIND_SCALE,
    ROLE_EMBEDDING,
    ROLE_NORM_SCALE,
    ROLE_OTHER,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
    LayerRecord,
    ModelSnapshot,
    ParamRecord,
)

#: Parameter roles that are weight matrices/kernels/tables (never biases or norm params).
MATRIX_ROLES = (ROLE_WEIGHT, ROLE_RECURRENT, ROLE_EMBEDDING)


#: Layer kinds a signal passes through without being re-weighted (for adjacency walks).
PASS_THROUGH_KINDS = frozenset({KIND_ACTIVATION, KIND_DROPOUT, KIND_POOL, KIND_OTHER, KIND_PREPROCESS})


def base_name(name: str) -> str:
    """Layer name without an activation-record suffix (``"fc1/relu" -> "fc1"``)."""
    return name.split("/")[0]


def fused_activation(snapshot: ModelSnapshot, rec: LayerRecord) -> bool:
    """Whether ``rec``'s activation is fused into it (Keras ``Dense(..., activation=...)``)."""
    return any(r.name.startswith(rec.name + "/") for r in snapshot.layers)


def has_dataflow(snapshot: ModelSnapshot) -> bool:
    """Whether the adapter traced ``inputs_from`` (else fall back to execution order)."""
    return snapshot.memo("has_dataflow", lambda: any(r.inputs_from for r in snapshot.layers))


def next_layers(snapshot: ModelSnapshot, rec: LayerRecord) -> list[LayerRecord]:
    """Direct consumers of ``rec`` (traced data flow), else its execution-order successor."""
    if has_dataflow(snapshot):
        cons = snapshot.consumers(rec.name)
        if cons:
            return cons
        if rec.inputs_from or rec.consumes_model_input:
            return []  # traced, and nobody consumed it (an output)
    nxt = snapshot.successor(rec.name)
    return [nxt] if nxt is not None else []


def walk_downstream(snapshot: ModelSnapshot, rec: LayerRecord, through: Iterable[str] = PASS_THROUGH_KINDS,
                    limit: int = 16) -> Iterator[LayerRecord]:
    """Layers reached from ``rec`` passing only through kinds in ``through``.

    Yields every reached layer (including the first one of another kind, where the walk stops
    on that branch).
    """
    through = frozenset(through)
    seen: set[str] = {rec.name}
    frontier = next_layers(snapshot, rec)
    steps = 0
    while frontier and steps < limit:
        steps += 1
        nxt: list[LayerRecord] = []
        for r in frontier:
            if r.name in seen:
                continue
            seen.add(r.name)
            yield r
            if r.kind in through:
                nxt.extend(next_layers(snapshot, r))
        frontier = nxt


def norm_after(snapshot: ModelSnapshot, rec: LayerRecord) -> LayerRecord | None:
    """The normalization layer that directly normalizes ``rec``'s output, if any.

    Uses ``attrs["norm_after"]`` when the adapter set it (a layer name or ``True``), else walks
    the data flow through activations/dropout/pooling/reshapes. Once per layer of a snapshot.
    """
    if snapshot.layer(rec.name) is rec:
        return snapshot.memo(("norm_after", rec.name), lambda: _norm_after(snapshot, rec))
    return _norm_after(snapshot, rec)


def _norm_after(snapshot: ModelSnapshot, rec: LayerRecord) -> LayerRecord | None:
    hint = rec.attrs.get("norm_after")
    if isinstance(hint, str) and snapshot.layer(hint) is not None:
        return snapshot.layer(hint)
    if hint is False:
        return None
    for r in walk_downstream(snapshot, rec):
        if r.is_norm:
            return r
        if r.is_weight_layer:
            break
    return rec if hint else None  # the adapter knows there is one; name unknown: return the layer itself


def matrix_params(rec: LayerRecord) -> list[ParamRecord]:
    """Weight matrices/kernels/tables (>= 2-D) of a weight layer; never biases or norm params."""
    if not rec.is_weight_layer:
        return []
    return [p for p in rec.params if p.role in MATRIX_ROLES and len(p.stats.shape) >= 2]


def is_head(snapshot: ModelSnapshot, rec: LayerRecord) -> bool:
    """Whether ``rec`` is the final classifier/regression head (the last executed weight layer)."""
    head = snapshot.output_layer
    if head is None:
        return False
    if rec.name == head.name:
        return True
    if snapshot.output is not None and snapshot.output.final_layer:
        return base_name(snapshot.output.final_layer) == rec.name
    return False


def producer_weight_layer(snapshot: ModelSnapshot, rec: LayerRecord) -> LayerRecord | None:
    """The weight layer whose output an activation/norm record transforms (walking upstream)."""
    if rec.inputs_from:
        seen: set[str] = set()
        frontier = list(rec.inputs_from)
        while frontier:
            n = frontier.pop(0)
            r = snapshot.layer(n)
            if n in seen or r is None:
                continue
            seen.add(n)
            if r.is_weight_layer:
                return r
            frontier.extend(r.inputs_from)
        return None
    owner = snapshot.layer(base_name(rec.name)) if "/" in rec.name else None
    if owner is not None:
        return owner
    for r in reversed(snapshot.layers[:snapshot.index(rec.name) or 0]):
        if r.is_weight_layer:
            return r
    return None


def has_zero_scale(rec: LayerRecord) -> bool:
    """A norm layer with an all-zero scale, or a layer-scale record whose values are all zero."""
    for p in rec.params:
        if p.role == ROLE_NORM_SCALE or (rec.kind == KIND_SCALE and p.role in (ROLE_OTHER, ROLE_WEIGHT)):
            if p.stats.size and p.stats.abs_max == 0.0:
                return True
    return False
