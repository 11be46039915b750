"""Flatten a Keras functional graph (nested models expanded) and read its structure.

A Sequential or Functional model is a DAG of ``Node`` call events. :func:`trace` walks it
from the outputs back to the inputs (depth-first, so the order follows the code: the first
operand of a merge before the second) and expands nested Functional/Sequential models into
their own layers, named ``"outer/inner"``. Tensors are keyed by ``(context, id(KerasTensor))``
so that a nested model used twice gets two independent expansions; the inputs and outputs
of an expansion are aliases of the outer tensors.

Subclassed models (a ``call`` Python writes) cannot be traced: :func:`trace` returns ``None``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator

from netdoctor.adapters.keras.kinds import (
    MERGE_CLASSES,
    RESHAPE_CLASSES,
    activation_name,
    class_names,
    fused_activation,
    kind_of,
)
from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_BATCHNORM,
    KIND_DROPOUT,
    KIND_EMBEDDING,
    KIND_POOL,
    KIND_PREPROCESS,
    KIND_SCALE,
    NORM_KINDS,
    WEIGHT_KINDS,
)

Key = tuple[int, int]

_TRANSPARENT_KINDS = NORM_KINDS | {KIND_DROPOUT, KIND_POOL, KIND_PREPROCESS, KIND_SCALE}


@dataclass(eq=False)
class Step:
    """One call of a layer or operation in the flattened graph."""

    name: str
    op: Any
    node: Any
    ctx: int
    in_keys: tuple[Key, ...]
    out_keys: tuple[Key, ...]
    kind: str
    fused: str | None = None  # non-linear fused activation of a weight layer
    act: str | None = None  # function of an activation layer/op

    @property
    def act_record(self) -> str | None:
        """Name of the activation record split off a fused activation."""
        return f"{self.name}/{self.fused}" if self.fused else None

    @property
    def out_name(self) -> str:
        """Record that produced this step's outputs (the activation record if fused)."""
        return self.act_record or self.name

    @property
    def type_name(self) -> str:
        return type(self.op).__name__

    @property
    def transparent(self) -> bool:
        """Passes a weight layer's output on unchanged in kind (norm, dropout, reshape, merge)."""
        return self.kind in _TRANSPARENT_KINDS or (
            self.kind not in WEIGHT_KINDS and self.kind != KIND_ACTIVATION
            and self.type_name in RESHAPE_CLASSES | MERGE_CLASSES
        )


@dataclass
class Trace:
    """A flattened functional graph."""

    steps: list[Step]
    alias: dict[Key, Key]
    input_keys: list[Key]
    output_keys: list[Key]
    containers: list[tuple[str, Any]] = field(default_factory=list)

    def resolve(self, key: Key) -> Key:
        while key in self.alias:
            key = self.alias[key]
        return key


def functional_of(model: Any) -> Any | None:
    """The Functional graph that computes ``model``, or ``None`` for subclassed models."""
    try:
        from keras.src.models.functional import Functional
        from keras.src.models.sequential import Sequential
    except ImportError:  # pragma: no cover - private layout changed
        return None
    if isinstance(model, Sequential):
        if type(model).call is not Sequential.call:
            return None
        return getattr(model, "_functional", None)
    if isinstance(model, Functional) and type(model).call is Functional.call:
        return model
    return None


def trace(model: Any) -> Trace | None:
    """Flatten ``model``'s graph, or ``None`` when it is not a (built) functional graph."""
    fn = functional_of(model)
    if fn is None:
        return None
    tr = Trace(steps=[], alias={}, input_keys=[(0, id(t)) for t in fn._inputs], output_keys=[])
    counter = itertools.count(1)
    _expand(fn, 0, "", tr, counter)
    tr.output_keys = [tr.resolve((0, id(t))) for t in fn._outputs]
    return tr


def _node_of(t: Any) -> Any | None:
    hist = getattr(t, "_keras_history", None)
    if hist is None or hist[0] is None:
        return None
    return hist[0]._inbound_nodes[hist[1]]


def topo_nodes(fn: Any) -> list[Any]:
    """Nodes of ``fn`` from inputs to outputs (iterative depth-first post-order)."""
    input_ids = {id(t) for t in fn._inputs}

    def parents(node: Any) -> Iterator[Any]:
        for t in node.input_tensors:
            if id(t) in input_ids:
                continue
            p = _node_of(t)
            if p is not None:
                yield p

    order: list[Any] = []
    seen: set[int] = set()
    for out in fn._outputs:
        root = None if id(out) in input_ids else _node_of(out)
        if root is None or id(root) in seen:
            continue
        seen.add(id(root))
        stack = [(root, parents(root))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                order.append(node)
            elif id(nxt) not in seen:
                seen.add(id(nxt))
                stack.append((nxt, parents(nxt)))
    return order


def _inner_inputs(node: Any, inner: Any) -> list[Any] | None:
    """The outer KerasTensors a nested-model call feeds to ``inner``'s inputs, in order."""
    args = node.arguments.args
    first = args[0] if args else node.arguments.kwargs.get("inputs")
    if first is None:
        return None
    if isinstance(first, dict) and not isinstance(inner._inputs_struct, dict):
        got = [first.get(t.name) for t in inner._inputs]
    else:
        from keras import tree

        got = tree.flatten(first)
    if len(got) != len(inner._inputs) or any(g is None or not hasattr(g, "_keras_history") for g in got):
        return None
    return got


def _expand(fn: Any, ctx: int, prefix: str, tr: Trace, counter: Iterator[int]) -> None:
    for node in topo_nodes(fn):
        op = node.operation
        if node.is_input or op is None:
            continue
        inner = functional_of(op) if "Model" in class_names(op) else None
        bound = _inner_inputs(node, inner) if inner is not None else None
        if inner is not None and bound is not None:
            sub = next(counter)
            tr.containers.append((prefix + op.name, op))
            for outer_t, inner_t in zip(bound, inner._inputs):
                tr.alias[(sub, id(inner_t))] = tr.resolve((ctx, id(outer_t)))
            _expand(inner, sub, f"{prefix}{op.name}/", tr, counter)
            for outer_t, inner_t in zip(node.outputs, inner._outputs):
                tr.alias[(ctx, id(outer_t))] = tr.resolve((sub, id(inner_t)))
            continue
        kind = kind_of(op)
        fused = fused_activation(op) if kind in WEIGHT_KINDS else None
        tr.steps.append(Step(
            name=prefix + op.name,
            op=op,
            node=node,
            ctx=ctx,
            in_keys=tuple(tr.resolve((ctx, id(t))) for t in node.input_tensors),
            out_keys=tuple((ctx, id(t)) for t in node.outputs),
            kind=kind,
            fused=None if fused in (None, "linear") else fused,
            act=activation_name(op) if kind == KIND_ACTIVATION else None,
        ))


@dataclass
class Structure:
    """Data-flow facts about a trace, computed once."""

    inputs_from: dict[str, tuple[str, ...]]
    consumes_input: dict[str, bool]
    entry: dict[str, bool]
    activation: dict[str, str | None]
    norm_after: dict[str, bool]
    residual: bool
    final_layer: str | None
    final_activation: str | None


def analyze(tr: Trace, opaque_weights: set[str]) -> Structure:
    """Derive inputs_from, entry, look-through activations and the output's last activation.

    Args:
        tr: The trace.
        opaque_weights: Names of non-weight steps that own weights inside (custom layers);
            their outputs do not count as raw model input for ``entry``.
    """
    producer: dict[Key, Step] = {}
    consumers: dict[Key, list[Step]] = defaultdict(list)
    for s in tr.steps:
        for k in s.out_keys:
            producer[k] = s
        for k in dict.fromkeys(s.in_keys):
            consumers[k].append(s)
    inputs, outputs = set(tr.input_keys), set(tr.output_keys)
    st = Structure({}, {}, {}, {}, {}, False, None, None)
    pure = set(inputs)
    for s in tr.steps:  # a shared layer has several steps with one name: merge them
        froms = tuple(producer[k].out_name for k in s.in_keys if k in producer)
        st.inputs_from[s.name] = tuple(dict.fromkeys(st.inputs_from.get(s.name, ()) + froms))
        st.consumes_input[s.name] = st.consumes_input.get(s.name, False) or any(k in inputs for k in s.in_keys)
        reaches = any(k in pure for k in _data_keys(s, tr))
        if s.kind in WEIGHT_KINDS:
            st.entry[s.name] = st.entry.get(s.name, False) or (reaches and s.kind != KIND_EMBEDDING)
            st.activation.setdefault(s.name, s.fused or _look_through(s, consumers, outputs))
            st.norm_after[s.name] = st.norm_after.get(s.name, False) or _normalized(s, consumers)
        elif reaches and s.name not in opaque_weights:
            pure.update(s.out_keys)
        if s.type_name == "Add" and len(set(s.in_keys)) >= 2:
            st.residual = True
    if tr.output_keys and tr.output_keys[0] in producer:
        last = producer[tr.output_keys[0]]
        st.final_layer = last.out_name
        st.final_activation = _final_activation(last, producer)
    return st


def _normalized(s: Step, consumers: dict[Key, list[Step]]) -> bool:
    """Whether a normalization layer normalizes ``s``'s output channels by their own statistics.

    Directly, or through layers that keep it proportional to the weights (dropout, pooling,
    reshapes), or through a ``Concatenate`` into a BatchNorm: BatchNorm normalizes each channel
    of the concatenation separately, so a DenseNet conv whose output is concatenated and then
    normalized is as scale-invariant as one followed by its own BatchNorm (the torch probe sees
    ``torch.cat`` as an operation, so the BatchNorm is a direct consumer there too).
    """
    frontier, seen = [(k, False) for k in s.out_keys], set()
    while frontier:
        k, concatenated = frontier.pop()
        for c in consumers.get(k, ()):
            if (id(c), concatenated) in seen:
                continue
            seen.add((id(c), concatenated))
            if c.kind in NORM_KINDS and (c.kind == KIND_BATCHNORM or not concatenated):
                return True
            if c.kind in (KIND_DROPOUT, KIND_POOL) or (c.type_name in RESHAPE_CLASSES and c.kind not in WEIGHT_KINDS):
                frontier.extend((o, concatenated) for o in c.out_keys)
            elif c.type_name == "Concatenate":
                frontier.extend((o, True) for o in c.out_keys)
    return False


def _data_keys(s: Step, tr: Trace) -> list[Key]:
    """Keys of the tensors passed positionally (the data; masks and the like come as keywords)."""
    from keras import tree

    args = [t for t in tree.flatten(s.node.arguments.args) if hasattr(t, "_keras_history")]
    return [tr.resolve((s.ctx, id(t))) for t in args] if args else list(s.in_keys)


def _look_through(s: Step, consumers: dict[Key, list[Step]], outputs: set[Key]) -> str | None:
    found: list[str | None] = []
    seen: set[int] = set()
    frontier = list(s.out_keys)
    while frontier:
        k = frontier.pop(0)
        if k in outputs:
            found.append("linear")
        for c in consumers.get(k, ()):
            if id(c) in seen:
                continue
            seen.add(id(c))
            if c.kind == KIND_ACTIVATION:
                found.append(c.act)
            elif c.kind in WEIGHT_KINDS:
                found.append("linear")
            elif c.transparent:
                frontier.extend(c.out_keys)
            else:
                found.append(None)
    names = {f for f in found if f is not None}
    nonlinear = names - {"linear"}
    if len(nonlinear) == 1:
        return nonlinear.pop()
    if not nonlinear and names:
        return "linear"
    return None


def _final_activation(last: Step, producer: dict[Key, Step]) -> str | None:
    s: Step | None = last
    while s is not None:
        if s.fused:
            return s.fused
        if s.kind == KIND_ACTIVATION:
            return None if s.act == "linear" else s.act
        if s.kind in WEIGHT_KINDS or not (s.kind == KIND_DROPOUT or s.type_name in RESHAPE_CLASSES):
            return None
        keys = [k for k in s.in_keys if k in producer]
        s = producer[keys[0]] if len(keys) == 1 else None
    return None
