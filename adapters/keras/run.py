"""Run a traced Keras graph once, recording per-layer statistics on the way.

The interpreter does what ``Functional._run_through_graph`` does (fill each node's
arguments from computed tensors, pass ``training`` to layers that take it, let
``Layer.__call__`` propagate masks), but over the flattened graph of nested models, so the
outputs of every layer, inner ones included, are at hand in the same forward pass that the
gradient tape records. Statistics are reduced under ``pause()`` (not recorded) and cached
per tensor, so a tensor that is one layer's output and the next layer's input is reduced
once. For a weight layer with a fused activation (``Dense(..., activation="relu")``) the
pre-activation is the tensor the layer hands its ``activation``: for the duration of that one
call the instance attribute is a pass-through that keeps its argument (:class:`_Capture`), and
it is put back in a ``finally``. Only when the layer never called it (a custom ``call``) is the
pre-activation recomputed from the layer input and the layer's own kernel/bias with
``keras.ops`` (a second matmul/convolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import numpy as np

from netdoctor.adapters.keras.graph import Step, Trace
from netdoctor.adapters.keras.kinds import class_names, inner_layer
from netdoctor.adapters.keras.stats import saturation_bounds, tensor_stats
from netdoctor.errors import DataError
from netdoctor.snapshot import KIND_ACTIVATION, RELU_FAMILY, ProbeSettings, TensorStats


@dataclass
class Measured:
    """What the forward pass measured for one record."""

    calls: int = 0
    input: TensorStats | None = None
    output: TensorStats | None = None
    unit_active: np.ndarray | None = None
    unit_saturated: np.ndarray | None = None


class Recorder:
    """Collects :class:`Measured` per record name during one forward pass.

    Args:
        settings: Probe settings (unit cap, saturation threshold).
        unit_keys: Keys of the tensors whose statistics get per-unit vectors over the
            features/channels: the inputs of the entry weight layers (the snapshot contract:
            ND101 reads them) and the main output. Every other tensor gets scalar statistics,
            plus ``unit_active``/``unit_saturated`` for activation outputs.
        channels_first: The model's convolutions use ``data_format="channels_first"``: the
            units of tensors with 3 or more axes are on axis 1 instead of the last axis.
        sparsity: Measure ``abs_mean`` and ``frac_zero`` of large tensors (``Need.SPARSITY``; see
            :func:`~netdoctor.adapters.keras.stats.tensor_stats`).
    """

    def __init__(self, settings: ProbeSettings, unit_keys: set[Any], channels_first: bool = False,
                 sparsity: bool = True) -> None:
        self.settings = settings
        self.unit_keys = unit_keys
        self.channels_first = channels_first
        self.sparsity = sparsity
        self.measured: dict[str, Measured] = {}
        self._cache: dict[int, tuple[Any, bool, TensorStats, np.ndarray | None, np.ndarray | None]] = {}

    def stats(self, t: Any, act: str | None = None,
              per_unit: bool = False) -> tuple[TensorStats, np.ndarray | None, np.ndarray | None]:
        """Stats of a tensor (cached by identity); ``act`` adds unit_active / unit_saturated."""
        positive = act in RELU_FAMILY
        sat = saturation_bounds(act, self.settings.saturation_preact)
        hit = self._cache.get(id(t))
        if (hit is not None and hit[0] is t and (hit[1] or not per_unit) and (not positive or hit[3] is not None)
                and (sat is None or hit[4] is not None)):
            return hit[2], hit[3], hit[4]
        axis = 1 if self.channels_first and len(t.shape) >= 3 else -1
        out = tensor_stats(t, max_units=self.settings.max_units, per_unit=per_unit, unit_axis=axis, positive=positive,
                           sparsity=self.sparsity,
                           saturation=sat)
        self._cache[id(t)] = (t, per_unit, *out)
        return out

    def record(self, step: Step, args: Any, outputs: list[Any], pre: Any = None) -> None:
        """Measure one executed step (first call only; later calls are counted).

        ``pre`` is the pre-activation of a fused weight layer, captured during its call
        (``None``: recompute it).
        """
        from keras import tree

        m = self.measured.setdefault(step.name, Measured())
        m.calls += 1
        act_m = self.measured.setdefault(step.act_record, Measured()) if step.fused else None
        if act_m is not None:
            act_m.calls += 1
        if m.calls > 1:
            return
        x = _first_tensor(tree.flatten(args))
        y = _first_tensor(outputs)
        if x is not None:
            wants_units = bool(step.in_keys) and step.in_keys[0] in self.unit_keys and _is_float(x)
            m.input = self.stats(x, per_unit=wants_units)[0]
        if y is None:
            return
        if step.fused:
            z = pre if pre is not None else preactivation(step.op, x) if x is not None else None
            if z is not None:
                m.output = self.stats(z)[0]
                act_m.input = m.output
            act_m.output, act_m.unit_active, act_m.unit_saturated = self.stats(y, step.fused,
                                                                               per_unit=self._feeds_weights(step))
        elif step.kind == KIND_ACTIVATION:
            m.output, m.unit_active, m.unit_saturated = self.stats(y, step.act, per_unit=self._feeds_weights(step))
        else:
            m.output = self.stats(y, per_unit=self._feeds_weights(step))[0]

    def _feeds_weights(self, step: Step) -> bool:
        """The step's first output is a weight layer's input (reduce it per unit right away)."""
        return bool(step.out_keys) and step.out_keys[0] in self.unit_keys


def _is_float(t: Any) -> bool:
    from keras import backend as K

    return bool(K.is_float_dtype(K.standardize_dtype(t.dtype)))


def _first_tensor(items: list[Any]) -> Any | None:
    from keras import ops

    for t in items:
        if t is not None and ops.is_tensor(t) and hasattr(t, "shape"):
            return t
    return None


class _Capture:
    """Stands in for a weight layer's ``activation`` during one call and keeps its first argument."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.z: Any = None

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if self.z is None:
            self.z = x
        return self.fn(x, *args, **kwargs)


_CAPTURED = ("Dense", "EinsumDense", "BaseConv", "BaseConvTranspose", "BaseDepthwiseConv", "BaseSeparableConv")


def _capture(step: Step) -> _Capture | None:
    """Install a :class:`_Capture` as the fused activation of ``step.op`` (the layers :func:`preactivation` knows)."""
    op = step.op
    fn = op.__dict__.get("activation") if step.fused else None
    if fn is None or not callable(fn) or inner_layer(op) is not None \
            or not any(n in _CAPTURED for n in class_names(op)):
        return None
    cap = _Capture(fn)
    object.__setattr__(op, "activation", cap)  # bypasses Keras' attribute tracking; undone below
    return cap


def preactivation(layer: Any, x: Any) -> Any | None:
    """``kernel . x + bias`` of a Dense/EinsumDense/Conv layer, before its activation."""
    from keras import ops

    if inner_layer(layer) is not None:
        return None
    names = class_names(layer)
    x = ops.cast(x, layer.compute_dtype)
    fmt = getattr(layer, "data_format", "channels_last")
    conv_kw = lambda: dict(strides=layer.strides, padding=layer.padding,  # noqa: E731
                           dilation_rate=layer.dilation_rate, data_format=fmt)
    if "Dense" in names:
        z = ops.matmul(x, layer.kernel)
    elif "EinsumDense" in names:
        z = ops.einsum(layer.equation, x, layer.kernel)
    elif "BaseSeparableConv" in names:
        z = ops.separable_conv(x, layer.depthwise_kernel, layer.pointwise_kernel, **conv_kw())
    elif "BaseDepthwiseConv" in names:
        z = ops.depthwise_conv(x, layer.kernel, **conv_kw())
    elif "BaseConvTranspose" in names:
        kw = conv_kw()
        kw["strides"] = list(layer.strides)
        z = ops.conv_transpose(x, layer.kernel, output_padding=layer.output_padding, **kw)
    elif "BaseConv" in names:
        z = layer.convolution_op(x, layer.kernel)
    else:
        return None
    bias = getattr(layer, "bias", None)
    if bias is not None:
        b = ops.cast(bias, z.dtype)
        if fmt == "channels_first" and "Dense" not in names and "EinsumDense" not in names:
            b = ops.reshape(b, (1, -1) + (1,) * (len(z.shape) - 2))
        z = ops.add(z, b)
    return z


class _View(dict):
    """``tensor_dict`` for ``SymbolicArguments.fill_in``: ids of one context, resolved through aliases."""

    def __init__(self, store: dict, tr: Trace) -> None:
        super().__init__()
        self.store, self.tr, self.ctx = store, tr, 0

    def __getitem__(self, i: int) -> Any:
        return self.store[self.tr.resolve((self.ctx, i))]

    def get(self, i: int, default: Any = None) -> Any:
        return self.store.get(self.tr.resolve((self.ctx, i)), default)


_DATA_ERRORS = ("InvalidArgumentError", "ValueError", "TypeError", "RuntimeError", "IndexError")


def run_graph(
    tr: Trace,
    inputs: list[Any],
    *,
    pause: Callable[[], ContextManager[Any]],
    recorder: Recorder | None,
) -> list[Any]:
    """Run the flattened graph in training mode on ``inputs`` (ordered like the model inputs).

    Returns:
        The output tensors, ordered like the model's flat outputs.

    Raises:
        DataError: A layer rejected what it received (shape/dtype), naming the layer and shapes.
    """
    from keras import tree

    store: dict = {}
    for key, value in zip(tr.input_keys, inputs):
        store[key] = value
    view = _View(store, tr)
    for step in tr.steps:
        view.ctx = step.ctx
        args, kwargs = step.node.arguments.fill_in(view)
        if "training" in getattr(step.op, "_call_context_args", ()):
            kwargs["training"] = True
        cap = _capture(step) if recorder is not None else None
        try:
            out = step.op(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raised below unless it is about the data
            if not any(n in _DATA_ERRORS for n in class_names(exc)):
                raise
            raise _data_error(step, args, exc) from exc
        finally:
            if cap is not None:
                object.__setattr__(step.op, "activation", cap.fn)
        flat = tree.flatten(out)
        for key, value in zip(step.out_keys, flat):
            store[key] = value
        if recorder is not None:
            with pause():
                recorder.record(step, args, flat, cap.z if cap is not None else None)
    return [store[k] for k in tr.output_keys]


def _data_error(step: Step, args: Any, exc: BaseException) -> DataError:
    from keras import tree

    got = [tuple(t.shape) for t in tree.flatten(args) if hasattr(t, "shape")]
    want = [tuple(t.shape) for t in step.node.input_tensors]
    msg = (str(exc).strip().splitlines() or [""])[0][:200]
    return DataError(
        f"layer '{step.name}' ({step.type_name}) expects input shape {_shapes(want)} but got {_shapes(got)} "
        f"({type(exc).__name__}: {msg}); pass data shaped like the model input"
    )


def _shapes(shapes: list[tuple]) -> str:
    fmt = ["(" + ", ".join("None" if d is None else str(d) for d in s) + ("," if len(s) == 1 else "") + ")"
           for s in shapes]
    return fmt[0] if len(fmt) == 1 else "[" + ", ".join(fmt) + "]"
