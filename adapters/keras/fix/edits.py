"""The edits of a Keras fix: what each :class:`~netdoctor.verify.protocol.FixStep` changes in the clone.

:func:`apply` turns structural edits into per-layer chains that rebuild the model (Sequential
from the layers' configs, Functional through ``keras.models.clone_model``; :func:`rebuild`), then
copies the weights by layer name and assigns re-initializations, bias resets and NaN repairs on
the clone. Also here: the optimizer of the probe (:func:`fresh_optimizer`), the loss in its
logits/probability form and the edits of the probe batch (standardize, drop rows).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from netdoctor.adapters._common import Applied
from netdoctor.adapters.keras.fix.context import FixContext
from netdoctor.adapters.keras.io import as_numpy
from netdoctor.adapters.keras.loss import describe
from netdoctor.verify.protocol import FixStep, NotApplicable

INITIALIZERS = {"he:relu": "he_normal", "he:leaky_relu": "he_normal", "lecun": "lecun_normal", "glorot": "glorot_uniform",
                "glorot:tanh": "glorot_uniform", "orthogonal": "orthogonal", "normal": "uniform"}
INIT_ARG = {"kernel": "kernel_initializer", "recurrent_kernel": "recurrent_initializer", "bias": "bias_initializer",
            "embeddings": "embeddings_initializer"}
_LOSS_CLASSES = {"sparsecategoricalcrossentropy": "SparseCategoricalCrossentropy",
                 "categoricalcrossentropy": "CategoricalCrossentropy", "binarycrossentropy": "BinaryCrossentropy",
                 "binaryfocalcrossentropy": "BinaryFocalCrossentropy",
                 "categoricalfocalcrossentropy": "CategoricalFocalCrossentropy"}

Chain = Callable[[Any], list]


def apply(ctx: FixContext, steps: Sequence[FixStep]) -> Applied:
    """Apply ``steps`` to a clone of the model (and copies of the data/loss)."""
    random.seed(ctx.seed)
    np.random.seed(ctx.seed)
    a = Applied(None, ctx.inputs, ctx.targets, ctx.loss_fn)
    chains: dict[str, Chain] = {}
    loss = ctx.loss_fn if ctx.loss_fn is not None else ctx.compiled_loss
    for s in steps:
        if s.op in ("remove", "move_dropout", "insert_norm", "set_activation", "no_bias"):
            _chain(ctx, s, chains, a)
        elif s.op == "loss_form":
            loss = a.loss_fn = loss_in_form(loss, str(s.get("form")))
        elif s.op == "clip":
            a.clip = float(s.get("max_norm"))
        elif s.op == "standardize":
            a.inputs = _map_arrays(a.inputs, _standardize)
        elif s.op == "drop_rows":
            a.inputs, a.targets = _drop_rows(a.inputs, a.targets)
    a.model = rebuild(ctx, chains)
    for s in steps:
        if s.op in ("reinit", "zero_bias", "reset_nonfinite"):
            _set_values(ctx, a.model, s)
    return a


def _chain(ctx: FixContext, s: FixStep, chains: dict[str, Chain], a: Applied) -> None:
    from keras import layers

    name = str(s.layer).split("/")[0]
    if s.op == "remove":
        chains[name] = lambda layer: []
    elif s.op == "move_dropout":
        after = str(s.get("after")).split("/")[0]
        chains[name] = lambda layer: []
        prev = chains.get(after, lambda layer: [_rebuilt(layer)])
        chains[after] = lambda layer: prev(layer) + [_rebuilt(top_layer(ctx, name))]
    elif s.op == "insert_norm":
        act = s.get("activation")
        act = act if act not in (None, "linear") else None

        def chain(layer: Any, act: str | None = act) -> list:
            out = [_rebuilt(layer, activation="linear", use_bias=False),
                   layers.BatchNormalization(name=f"{layer.name}_bn")]
            return out + ([layers.Activation(act, name=f"{layer.name}_act")] if act else [])

        chains[name] = chain
        if act:
            a.rename[f"{name}/{act}"] = f"{name}_act"
    elif s.op == "set_activation":
        chains[name] = lambda layer: [_rebuilt(layer, activation=str(s.get("activation")))]
    elif s.op == "no_bias":
        chains[name] = lambda layer: [_rebuilt(layer, use_bias=False)]


def top_layer(ctx: FixContext, name: str) -> Any:
    """The top-level layer ``name`` of the user's model."""
    try:
        return ctx.model.get_layer(name)
    except ValueError:
        raise NotApplicable(f"`{name}` is not a top-level layer of the model; change it by hand") from None


def rebuild(ctx: FixContext, chains: dict[str, Chain]) -> Any:
    """Rebuild the model with ``chains`` replacing layers, copy the weights, compile like the original."""
    import keras

    for name in chains:
        top_layer(ctx, name)
    kind = type(ctx.model).__name__
    if isinstance(ctx.model, keras.Sequential):
        built = [layer for orig in ctx.model.layers for layer in chains.get(orig.name, lambda x: [_rebuilt(x)])(orig)]
        inp = ctx.model.inputs[0]
        clone = keras.Sequential([keras.Input(shape=inp.shape[1:], dtype=inp.dtype), *built], name=ctx.model.name)
    elif "Functional" in [c.__name__ for c in type(ctx.model).__mro__]:
        extra: dict[int, list] = {}

        def clone_fn(layer: Any) -> Any:
            chain = chains[layer.name](layer) if layer.name in chains else [_rebuilt(layer)]
            first = chain[0] if chain else keras.layers.Identity(name=f"{layer.name}_removed")
            extra[id(first)] = chain[1:]
            return first

        def call_fn(layer: Any, *args: Any, **kwargs: Any) -> Any:
            out = layer(*args, **kwargs)
            for nxt in extra.get(id(layer), ()):
                out = nxt(out)
            return out

        clone = keras.models.clone_model(ctx.model, clone_function=clone_fn, call_function=call_fn)
    else:
        raise NotApplicable(f"{kind} is a subclassed Keras model; netdoctor can only copy Sequential and "
                            "Functional models")
    _copy_weights(ctx.model, clone)
    if ctx.compiled_loss is not None:
        clone.compile(optimizer=fresh_optimizer(ctx, None), loss=ctx.compiled_loss)
    return clone


def _set_values(ctx: FixContext, model: Any, s: FixStep) -> None:
    import keras

    layer = model.get_layer(str(s.layer).split("/")[0])
    for v in layer.weights:
        if s.op == "reinit" and v.name == s.get("param"):
            init = keras.initializers.get(INITIALIZERS[str(s.get("init"))])
            init = init.__class__.from_config({**init.get_config(), "seed": ctx.seed})
            v.assign(init(tuple(v.shape), dtype=v.dtype))
            return
        if s.op == "zero_bias" and v.name == "bias":
            v.assign(np.zeros(tuple(v.shape), dtype=v.dtype))
            return
        if s.op == "reset_nonfinite" and not np.all(np.isfinite(np.asarray(v.numpy()))):
            init = getattr(layer, f"{v.name}_initializer", None) or getattr(layer, INIT_ARG.get(v.name, "-"), None)
            if init is None:
                raise NotApplicable(f"no initializer known for `{layer.name}.{v.name}`; reload a checkpoint")
            v.assign(init(tuple(v.shape), dtype=v.dtype))
    if s.op != "reset_nonfinite":
        raise NotApplicable(f"`{s.layer}` has no weight {s.get('param') or 'bias'!r}")


def fresh_optimizer(ctx: FixContext, clip: float | None) -> Any:
    """A fresh optimizer from the model's compiled one (Adam 1e-3 when not compiled), clipped at ``clip``."""
    import keras

    opt = ctx.optimizer
    fresh = opt.__class__.from_config(opt.get_config()) if opt is not None else keras.optimizers.Adam(1e-3)
    if clip is not None:
        fresh.global_clipnorm = float(clip)
    return fresh


def _rebuilt(layer: Any, **overrides: Any) -> Any:
    """A new layer from ``layer``'s config (same name), with config overrides."""
    return layer.__class__.from_config({**layer.get_config(), **overrides})


def _copy_weights(src: Any, dst: Any) -> None:
    """Copy weights layer by layer (by name); variables the clone lacks (a removed bias) are skipped."""
    for layer in src.layers:
        try:
            new = dst.get_layer(layer.name)
        except ValueError:
            continue
        old_w, new_w = layer.weights, new.weights
        if [tuple(v.shape) for v in old_w] == [tuple(v.shape) for v in new_w]:
            new.set_weights(layer.get_weights())
            continue
        by_name = {v.name: v for v in new_w}
        for v in old_w:
            t = by_name.get(v.name)
            if t is not None and tuple(t.shape) == tuple(v.shape):
                t.assign(v.numpy())


def loss_in_form(loss: Any, form: str) -> Any:
    """The loss with ``from_logits`` set for ``form`` ("logits" or "probabilities")."""
    import keras

    if loss is None:
        raise NotApplicable("the model has no loss to switch; pass loss_fn or compile the model")
    logits = form == "logits"
    if isinstance(loss, keras.losses.Loss):
        cfg = loss.get_config()
        if "from_logits" in cfg:
            return loss.__class__.from_config({**cfg, "from_logits": logits})
    name = describe(loss)[0] if not isinstance(loss, str) else loss
    cls = _LOSS_CLASSES.get(re.sub(r"[_\s]", "", str(name)).lower())
    if cls is None:
        raise NotApplicable(f"cannot switch {name} to its {form} form")
    return getattr(keras.losses, cls)(from_logits=logits)


def _standardize(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind != "f" or a.ndim < 2:
        return a
    axes = tuple(range(a.ndim - 1))
    std = np.maximum(a.std(axis=axes, keepdims=True), 1e-8)
    return ((a - a.mean(axis=axes, keepdims=True)) / std).astype(a.dtype)


def _map_arrays(data: Any, fn: Callable[[np.ndarray], np.ndarray]) -> Any:
    if isinstance(data, dict):
        return {k: _map_arrays(v, fn) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_map_arrays(v, fn) for v in data)
    if data is None or isinstance(data, (str, bytes)):
        return data
    return fn(as_numpy(data))


def _drop_rows(inputs: Any, targets: Any) -> tuple[Any, Any]:
    leaves: list[np.ndarray] = []
    _map_arrays((inputs, targets), lambda a: leaves.append(a) or a)
    n = next((a.shape[0] for a in leaves if a.ndim >= 1), 0)
    keep = np.ones(n, dtype=bool)
    for a in leaves:
        if a.ndim >= 1 and a.shape[0] == n and a.dtype.kind == "f":
            keep &= np.isfinite(a.reshape(n, -1)).all(axis=1)
    if not keep.any():
        raise NotApplicable("every sample contains NaN/Inf")
    cut = lambda a: a[keep] if a.ndim >= 1 and a.shape[0] == n else a
    return _map_arrays(inputs, cut), _map_arrays(targets, cut)
