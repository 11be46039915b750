"""Assemble snapshot records (layers and their parameters) for the Keras adapter."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from netdoctor import suppress
from netdoctor.adapters.keras.graph import Structure, Trace
from netdoctor.adapters.keras.kinds import (
    activation_name,
    compute_fans,
    fused_activation,
    initializer_name,
    inner_layer,
    is_layer,
    kind_of,
    layer_attrs,
    param_role,
    unit_axes,
)
from netdoctor.adapters.keras.run import Measured
from netdoctor.adapters.keras.stats import array_stats, duplicate_unit_frac, gradient_stats
from netdoctor.snapshot import (
    KIND_ACTIVATION,
    ROLE_EMBEDDING,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
    WEIGHT_KINDS,
    LayerRecord,
    ParamRecord,
    TensorStats,
)

_WEIGHT_ROLES = (ROLE_WEIGHT, ROLE_RECURRENT, ROLE_EMBEDDING)


@dataclass
class ParamSource:
    """What parameter records are made from."""

    trainable_ids: set[int]
    grads: dict[int, np.ndarray] | None  # by id(variable); None when gradients were not taken
    values: bool  # read the values (Need.WEIGHTS or GRADIENTS)
    seed_state_ids: set[int]
    grad_moments: bool = False  # every statistic of a gradient (Need.GRADIENT_MOMENTS), not only its norm
    sparsity: bool = True  # abs_mean and frac_zero of the large values (Need.SPARSITY; see array_stats)


def composite(layer: Any, kind: str) -> bool:
    """Layers whose sublayers are internal (LSTM cell, attention projections, wrappers)."""
    return kind in WEIGHT_KINDS or inner_layer(layer) is not None


def direct_variables(layer: Any, src: ParamSource) -> list[Any]:
    """Variables created by ``layer`` itself (not by its sublayers, no seed-generator state)."""
    out = list(getattr(layer, "_trainable_variables", ())) + list(getattr(layer, "_non_trainable_variables", ()))
    return [v for v in out if id(v) not in src.seed_state_ids]


def layer_variables(layer: Any, kind: str, src: ParamSource) -> list[Any]:
    if not is_layer(layer):
        return []
    if composite(layer, kind):
        return [v for v in layer.weights if id(v) not in src.seed_state_ids]
    return direct_variables(layer, src)


def _owners(layer: Any) -> dict[int, Any]:
    owners: dict[int, Any] = {}
    try:
        subs = layer._flatten_layers(include_self=True, recursive=True)
    except AttributeError:
        return owners
    for sub in subs:
        for v in list(getattr(sub, "_trainable_variables", ())) + list(getattr(sub, "_non_trainable_variables", ())):
            owners.setdefault(id(v), sub)
    return owners


def _rel_name(v: Any, layer: Any) -> str:
    path = str(getattr(v, "path", "") or v.name)
    marker = f"{layer.name}/"
    i = path.rfind(marker)
    return path[i + len(marker):] if i >= 0 else str(v.name)


def host_value(v: Any) -> np.ndarray:
    """A variable's value on the host. On TensorFlow, a read-only view of one read of it: no copy on a
    CPU (``v.numpy()`` copies the whole variable), and a later assignment leaves the view as it was."""
    import keras

    if keras.backend.backend() == "tensorflow":
        try:
            return np.asarray(v.value.value())  # v.value is the tf.Variable; value() is one read op
        except (TypeError, ValueError, AttributeError):  # a variable type TensorFlow cannot read this way
            pass
    return np.asarray(v.numpy())


def param_records(layer: Any, kind: str, src: ParamSource) -> tuple[ParamRecord, ...]:
    """Parameter records of one layer (see :class:`~netdoctor.snapshot.ParamRecord`)."""
    variables = layer_variables(layer, kind, src)
    if not variables:
        return ()
    owners = _owners(layer)
    out = []
    for v in variables:
        short = str(v.name).split("/")[-1]
        role = param_role(short, kind, bool(v.trainable))
        shape = tuple(int(d) for d in v.shape)
        trainable = id(v) in src.trainable_ids
        arr = host_value(v) if src.values else None
        stats = array_stats(arr, sparsity=src.sparsity) if arr is not None else TensorStats(shape=shape, dtype=str(v.dtype))
        grad = None
        if src.grads is not None and trainable and id(v) in src.grads:
            grad = (array_stats if src.grad_moments else gradient_stats)(src.grads[id(v)])
        extra: dict[str, Any] = {}
        if role in _WEIGHT_ROLES and len(shape) >= 1:
            owner = owners.get(id(v), layer)
            extra["fan_in"], extra["fan_out"] = compute_fans(shape)
            axes = unit_axes(owner, short, shape)
            extra["units"] = math.prod(shape[a] for a in axes) if axes else None
            extra["duplicate_unit_frac"] = duplicate_unit_frac(arr, axes) if arr is not None else None
            extra["initializer"] = initializer_name(owner, short)
        out.append(ParamRecord(name=_rel_name(v, layer), role=role, stats=stats, grad=grad,
                               trainable=trainable, **extra))
    return tuple(out)


def opaque_children(layer: Any, prefix: str) -> Iterator[tuple[str, Any, str]]:
    """``(name, sublayer, kind)`` of the parameter-holding leaves inside an untraced layer."""
    for child in getattr(layer, "_layers", ()):
        if not is_layer(child) or type(child).__name__ == "InputLayer":
            continue
        kind = kind_of(child)
        name = f"{prefix}/{child.name}" if prefix else child.name
        yield name, child, kind
        if not composite(child, kind):
            yield from opaque_children(child, name)


def _activation_record(name: str, act: str, src_name: str, m: Measured | None, calls: int) -> LayerRecord:
    return LayerRecord(
        name=f"{name}/{act}", type_name=act, kind=KIND_ACTIVATION, activation=act,
        input=m.input if m else None, output=m.output if m else None,
        unit_active=m.unit_active if m else None, unit_saturated=m.unit_saturated if m else None,
        inputs_from=(src_name,), calls=m.calls if m and m.calls else calls, attrs={"fused": True},
    )


def graph_records(tr: Trace, st: Structure, measured: dict[str, Measured] | None,
                  src: ParamSource) -> list[LayerRecord]:
    """Records of a traced graph in execution order (opaque layers followed by their insides)."""
    calls: dict[int, int] = {}
    for s in tr.steps:
        calls[id(s.op)] = calls.get(id(s.op), 0) + 1
    records: list[LayerRecord] = []
    seen: set[int] = set()
    depth = 0
    for s in tr.steps:
        if id(s.op) in seen:
            continue
        seen.add(id(s.op))
        m = measured.get(s.name) if measured is not None else None
        weight = s.kind in WEIGHT_KINDS
        attrs = layer_attrs(s.op, s.kind) if is_layer(s.op) else {}
        if weight:
            attrs["norm_after"] = st.norm_after.get(s.name, False)
        activation = st.activation.get(s.name) if weight else (s.act if s.kind == KIND_ACTIVATION else None)
        records.append(LayerRecord(
            name=s.name, type_name=s.type_name, kind=s.kind, activation=activation,
            params=param_records(s.op, s.kind, src),
            input=m.input if m else None, output=m.output if m else None,
            unit_active=m.unit_active if m else None, unit_saturated=m.unit_saturated if m else None,
            inputs_from=st.inputs_from.get(s.name, ()), consumes_model_input=st.consumes_input.get(s.name, False),
            entry=st.entry.get(s.name, False), calls=m.calls if m and m.calls else calls[id(s.op)],
            depth=depth if weight else None, attrs=attrs,
        ))
        depth += int(weight)
        if s.fused:
            am = measured.get(s.act_record) if measured is not None else None
            records.append(_activation_record(s.name, s.fused, s.name, am, calls[id(s.op)]))
        if is_layer(s.op) and not composite(s.op, s.kind):
            records.extend(_inner_records(s.op, s.name, src, executed=False))
    return records


def _inner_records(layer: Any, prefix: str, src: ParamSource, *, executed: bool,
                   depth: list[int] | None = None) -> list[LayerRecord]:
    out: list[LayerRecord] = []
    for name, child, kind in opaque_children(layer, prefix):
        params = param_records(child, kind, src)
        container = bool(getattr(child, "_layers", None)) and not composite(child, kind)
        if not params and (container or (not executed and kind not in WEIGHT_KINDS)):
            continue
        weight = kind in WEIGHT_KINDS
        fused = fused_activation(child) if weight else None
        fused = None if fused in (None, "linear") else fused
        act = fused if weight else None
        if kind == KIND_ACTIVATION:
            act = activation_name(child)
        attrs = layer_attrs(child, kind)
        d = None
        if weight and depth is not None:
            d = depth[0]
            depth[0] += 1
        out.append(LayerRecord(name=name, type_name=type(child).__name__, kind=kind, activation=act,
                               params=params, executed=executed, depth=d, attrs=attrs))
        if fused:
            out.append(_activation_record(name, fused, name, None, 1))
    return out


def subclassed_records(model: Any, src: ParamSource) -> list[LayerRecord]:
    """Records of an untraceable model: its leaf layers in declaration order, no data flow."""
    return _inner_records(model, "", src, executed=True, depth=[0])


def suppressions(model: Any, tr: Trace | None) -> dict[str, dict[str, str]]:
    """``{layer name: {rule: reason}}`` from ``netdoctor.allow`` marks."""
    named: list[tuple[str, Any]] = [("", model)]
    if tr is not None:
        named += tr.containers
        for s in tr.steps:
            named.append((s.name, s.op))
            if is_layer(s.op) and not composite(s.op, s.kind):
                named += [(n, c) for n, c, _ in opaque_children(s.op, s.name)]
    else:
        named += [(n, c) for n, c, _ in opaque_children(model, "")]
    out: dict[str, dict[str, str]] = {}
    for name, obj in named:
        marks = suppress.marks_of(obj)
        if marks:
            out.setdefault(name, {}).update(marks)
    return out
