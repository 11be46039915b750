"""Apply netdoctor's recommended fixes to a clone of a Keras 3 model, and run training probes.

Used by :mod:`netdoctor.verify`. The user's model is only read: Sequential models are rebuilt
from their layers' configs, Functional models cloned with ``keras.models.clone_model`` (a
``clone_function`` replaces layers, a ``call_function`` inserts new ones after a layer), and
the weights are copied over by layer name. The probe trains the clone with the model's
compiled optimizer (a fresh one from its config; Adam 1e-3 when not compiled) through the
adapter's gradient tape and loss resolution. :meth:`Fixer.guard` restores Python's and
numpy's RNGs, Keras' global seed generator and Keras' automatic-name counters afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from netdoctor.adapters._common import SYNTHETIC_BATCH
from netdoctor.adapters._keras_grad import grad_fn
from netdoctor.adapters._keras_io import (
    synthesize,
    synthetic_shape,
    target_kind,
    to_tensors,
)
from netdoctor.adapters._keras_loss import describe, plan
from netdoctor.adapters._keras_state import StateGuard
from netdoctor.adapters._keras_stats import looks_like, tensor_stats

from netdoctor.snapshot import ModelSnapshot, ProbeSettings
from netdoctor.verify import FixStep, NotApplicable, join_blocks

INITIALIZERS = {"he:relu": "he_normal", "he:leaky_relu": "he_normal", "lecun": "lecun_normal", "glorot": "glorot_uniform",
                "glorot:tanh": "glorot_uniform", "orthogonal": "orthogonal", "normal": "uniform"}
_INIT_ARG = {"kernel": "kernel_initializer", "recurrent_kernel": "recurrent_initializer", "bias": "bias_initializer",
             "embeddings": "embeddings_initializer"}
_LOSS_CLASSES = {"sparsecategoricalcrossentropy": "SparseCategoricalCrossentropy",
                 "categoricalcrossentropy": "CategoricalCrossentropy", "binarycrossentropy": "BinaryCrossentropy",
                 "binaryfocalcrossentropy": "BinaryFocalCrossentropy",
                 "categoricalfocalcrossentropy": "CategoricalFocalCrossentropy"}

Chain = Callable[[Any], list]


@dataclass
class Applied:
    """A fixed clone and what the probe and the adapter should feed it."""

    model: Any
    inputs: Any
    targets: Any
    loss_fn: Any
    rename: dict[str, str] = field(default_factory=dict)
    clip: float | None = None
    transform: str | None = None


@dataclass
class ProbeResult:
    """A training probe: final loss, settings, and the trained clone."""

    model: Any
    applied: Applied
    final: float
    steps: int
    optimizer: str
    loss_name: str
    clip: float | None = None
    note: str | None = None
    max_spike: float | None = None
    losses: list[float] = field(default_factory=list)


class Fixer:
    """Fixes and probes for one Keras model (see the module docstring)."""

    def __init__(self, model: Any, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
                 input_shape: Any) -> None:
        self.model, self.inputs, self.targets, self.loss_fn = model, inputs, targets, loss_fn
        self.settings, self.input_shape, self.seed = settings, input_shape, int(settings.seed)
        compiled = getattr(model, "_compile_loss", None) is not None
        self.compiled_loss = getattr(model, "loss", None) if compiled else None
        self.optimizer = getattr(model, "optimizer", None) if compiled else None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Restore Python's and numpy's RNGs, Keras' global seed generator and name counters afterwards."""
        from keras.src.backend.common import global_state

        py, npy = random.getstate(), np.random.get_state()
        gen = global_state.get_global_attribute("global_seed_generator")
        gen_state = np.array(gen.state.numpy(), copy=True) if gen is not None else None
        uids = global_state.get_global_attribute("object_name_uids")
        saved_uids = copy.copy(uids) if uids is not None else None
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)
            global_state.set_global_attribute("global_seed_generator", gen)
            if gen is not None:
                gen.state.assign(gen_state)
            if uids is not None:
                uids.clear()
                uids.update(saved_uids)
            global_state.set_global_attribute("object_name_uids", uids)

    # -- fixes ---------------------------------------------------------------------------------
    def apply(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> Applied:
        """Apply ``steps`` to a clone of the model (and copies of the data/loss)."""
        random.seed(self.seed)
        np.random.seed(self.seed)
        a = Applied(None, self.inputs, self.targets, self.loss_fn)
        chains: dict[str, Chain] = {}
        loss = self.loss_fn if self.loss_fn is not None else self.compiled_loss
        for s in steps:
            if s.op in ("remove", "move_dropout", "insert_norm", "set_activation", "no_bias"):
                self._chain(s, chains, a)
            elif s.op == "loss_form":
                loss = a.loss_fn = _loss_in_form(loss, str(s.get("form")))
            elif s.op == "clip":
                a.clip = float(s.get("max_norm"))
            elif s.op == "standardize":
                a.inputs = _map_arrays(a.inputs, _standardize)
            elif s.op == "drop_rows":
                a.inputs, a.targets = _drop_rows(a.inputs, a.targets)
        a.model = self._clone(chains)
        for s in steps:
            if s.op in ("reinit", "zero_bias", "reset_nonfinite"):
                self._set_values(a.model, s)
        return a

    def _chain(self, s: FixStep, chains: dict[str, Chain], a: Applied) -> None:
        from keras import layers

        name = str(s.layer).split("/")[0]
        if s.op == "remove":
            chains[name] = lambda layer: []
        elif s.op == "move_dropout":
            after = str(s.get("after")).split("/")[0]
            chains[name] = lambda layer: []
            prev = chains.get(after, lambda layer: [_rebuilt(layer)])
            chains[after] = lambda layer: prev(layer) + [_rebuilt(self._layer(name))]
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

    def _layer(self, name: str) -> Any:
        try:
            return self.model.get_layer(name)
        except ValueError:
            raise NotApplicable(f"`{name}` is not a top-level layer of the model; change it by hand") from None

    def _clone(self, chains: dict[str, Chain]) -> Any:
        """Rebuild the model with ``chains`` replacing layers, copy the weights, compile like the original."""
        import keras

        for name in chains:
            self._layer(name)
        kind = type(self.model).__name__
        if isinstance(self.model, keras.Sequential):
            built = [layer for orig in self.model.layers for layer in chains.get(orig.name, lambda x: [_rebuilt(x)])(orig)]
            inp = self.model.inputs[0]
            clone = keras.Sequential([keras.Input(shape=inp.shape[1:], dtype=inp.dtype), *built], name=self.model.name)
        elif "Functional" in [c.__name__ for c in type(self.model).__mro__]:
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

            clone = keras.models.clone_model(self.model, clone_function=clone_fn, call_function=call_fn)
        else:
            raise NotApplicable(f"{kind} is a subclassed Keras model; netdoctor can only copy Sequential and "
                                "Functional models")
        _copy_weights(self.model, clone)
        if self.compiled_loss is not None:
            clone.compile(optimizer=self._optimizer(None), loss=self.compiled_loss)
        return clone

    def _set_values(self, model: Any, s: FixStep) -> None:
        import keras

        layer = model.get_layer(str(s.layer).split("/")[0])
        for v in layer.weights:
            if s.op == "reinit" and v.name == s.get("param"):
                init = keras.initializers.get(INITIALIZERS[str(s.get("init"))])
                init = init.__class__.from_config({**init.get_config(), "seed": self.seed})
                v.assign(init(tuple(v.shape), dtype=v.dtype))
                return
            if s.op == "zero_bias" and v.name == "bias":
                v.assign(np.zeros(tuple(v.shape), dtype=v.dtype))
                return
            if s.op == "reset_nonfinite" and not np.all(np.isfinite(np.asarray(v.numpy()))):
                init = getattr(layer, f"{v.name}_initializer", None) or getattr(layer, _INIT_ARG.get(v.name, "-"), None)
                if init is None:
                    raise NotApplicable(f"no initializer known for `{layer.name}.{v.name}`; reload a checkpoint")
                v.assign(init(tuple(v.shape), dtype=v.dtype))
        if s.op != "reset_nonfinite":
            raise NotApplicable(f"`{s.layer}` has no weight {s.get('param') or 'bias'!r}")

    def _optimizer(self, clip: float | None) -> Any:
        import keras

        opt = self.optimizer
        fresh = opt.__class__.from_config(opt.get_config()) if opt is not None else keras.optimizers.Adam(1e-3)
        if clip is not None:
            fresh.global_clipnorm = float(clip)
        return fresh

    # -- training probe ------------------------------------------------------------------------
    def probe(self, applied: Applied | None, steps: int, mode: str = "full", minibatch: int = 16) -> ProbeResult:
        """``steps`` optimizer steps on the probe batch (seeded); ``applied=None`` probes the original."""
        import keras
        from keras import ops, tree

        backend = keras.backend.backend()
        if grad_fn(backend) is None:
            raise NotApplicable(f"training probes need the tensorflow or torch backend, not {backend}")
        a = applied or Applied(self._clone({}), self.inputs, self.targets, self.loss_fn)
        model, (x, y) = a.model, self._batch(a)
        variables = list(model.trainable_variables)
        if not variables:
            raise NotApplicable("the model has no trainable weights")
        opt, lp = self._optimizer(a.clip), self._plan(model, a.loss_fn, x, y)
        opt.build(variables)
        step = _train_step(backend, model, opt, lp, variables)
        StateGuard(model, self.seed).seed_generators()
        n, rng = _rows(x), np.random.default_rng(self.seed + 1)
        losses, norms, note = [], [], None
        try:
            for _ in range(steps):
                xb, yb = x, y
                if mode == "minibatch" and n > minibatch and y is not None:
                    idx = rng.permutation(n)[:minibatch]
                    xb, yb = (tree.map_structure(lambda t, i=idx: ops.take(t, i, axis=0), d) for d in (x, y))
                loss, total = step(xb, yb)
                total = float(ops.convert_to_numpy(total))
                norms.append(min(total, a.clip) if a.clip else total)
                losses.append(float(np.asarray(ops.convert_to_numpy(loss)).reshape(-1)[0]))
            final = self._final(model, x, y, lp)
        except (ValueError, TypeError, RuntimeError) as exc:
            final, note = float("nan"), f"the probe stopped: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        spike = _max_spike(norms) if mode == "minibatch" else None
        return ProbeResult(model, a, final, steps, _describe_optimizer(opt), lp.info.name, a.clip, note, spike, losses)

    def score(self, base: ProbeResult, fixed: ProbeResult, applied: Applied) -> tuple[float, float]:
        """Final probe losses (original, fixed), both under the fixed loss when the fix changed it."""
        if applied.loss_fn is self.loss_fn:
            return base.final, fixed.final
        x, y = self._batch(base.applied)
        return self._final(base.model, x, y, self._plan(base.model, applied.loss_fn, x, y)), fixed.final

    def _batch(self, a: Applied) -> tuple[Any, Any]:
        n = max(int(self.settings.max_samples), 1)
        if a.inputs is None:
            rng = np.random.default_rng(self.seed)
            xs = [synthesize(synthetic_shape(t.shape, self.input_shape, min(n, SYNTHETIC_BATCH)), str(t.dtype), rng, None)
                  for t in a.model.inputs]
            return to_tensors(xs[0] if len(xs) == 1 else xs, n), None
        return to_tensors(a.inputs, n), (to_tensors(a.targets, n) if a.targets is not None else None)

    def _plan(self, model: Any, loss_fn: Any, x: Any, y: Any) -> Any:
        from keras import tree

        out = model(x, training=False)
        main = tree.flatten(out)[0]
        looks = looks_like(main, tensor_stats(main, max_units=self.settings.max_units, per_unit=True)[0])
        units = int(main.shape[-1]) if len(main.shape) >= 2 else 1
        kind = target_kind(tree.flatten(y)[0], units) if y is not None else None
        return plan(model, loss_fn, y, out, looks, kind, self.seed)

    def _final(self, model: Any, x: Any, y: Any, lp: Any) -> float:
        from keras import ops

        StateGuard(model, self.seed + 2).seed_generators()
        value = lp.compute(y, model(x, training=True))
        return float(np.asarray(ops.convert_to_numpy(value)).reshape(-1)[0])

    # -- the code change, as the user would write it -------------------------------------------
    def diff(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> str:
        """A diff-like snippet of the fix in the user's own layer names (``-`` old, ``+`` new lines)."""
        return join_blocks([(s.op, self._diff(s)) for s in steps])

    def _diff(self, s: FixStep) -> list[str]:
        name = str(s.layer).split("/")[0]
        layer = self._layer(name) if s.layer else None
        if s.op == "reinit":
            arg = _INIT_ARG.get(str(s.get("param")), f"{s.get('param')}_initializer")
            return [f"- {_ctor(layer)},", f"+ {_ctor(layer, **{arg: INITIALIZERS[str(s.get('init'))]})},"]
        if s.op == "insert_norm":
            act = s.get("activation")
            new = [f"+ {_ctor(layer, activation='linear', use_bias=False)},", "+ layers.BatchNormalization(),"]
            return [f"- {_ctor(layer)},", *new, *([f'+ layers.Activation("{act}"),'] if act not in (None, "linear") else [])]
        if s.op == "remove":
            return [f"- {_ctor(layer)},"]
        if s.op == "move_dropout":
            after = self._layer(str(s.get("after")).split("/")[0])
            return [f"- {_ctor(layer)},", f"  {_ctor(after)},", f"+ {_ctor(layer)},"]
        if s.op in ("set_activation", "no_bias", "zero_bias"):
            over = {"set_activation": {"activation": s.get("activation")}, "no_bias": {"use_bias": False},
                    "zero_bias": {"bias_initializer": "zeros"}}[s.op]
            return [f"- {_ctor(layer)},", f"+ {_ctor(layer, **over)},"]
        if s.op == "reset_nonfinite":
            return [f'+ # reload weights saved before the divergence, or re-create "{name}" to re-initialize it']
        if s.op == "loss_form":
            old = self.loss_fn if self.loss_fn is not None else self.compiled_loss
            new = _loss_in_form(old, str(s.get("form")))
            return [f"- model.compile(..., loss={_loss_code(old)})", f"+ model.compile(..., loss={_loss_code(new)})"]
        if s.op == "clip":
            opt = self._optimizer(None)
            return [f"- optimizer = {_optimizer_code(opt)}", f"+ optimizer = {_optimizer_code(opt, s.get('max_norm'))}"]
        if s.op == "standardize":
            shape = tuple(self.model.inputs[0].shape[1:]) if getattr(self.model, "inputs", None) else ("...",)
            return ["+ norm = layers.Normalization(axis=-1)", "+ norm.adapt(x_train)  # per-feature mean and variance",
                    f"  keras.Input(shape={shape}),", "+ norm,"]
        if s.op == "drop_rows":
            return ["+ ok = np.isfinite(x).reshape(len(x), -1).all(1) & np.isfinite(y).reshape(len(y), -1).all(1)",
                    "+ x, y = x[ok], y[ok]"]
        return []


def _train_step(backend: str, model: Any, opt: Any, lp: Any, variables: list) -> Callable[[Any, Any], tuple[Any, Any]]:
    """One optimizer step ``(x, y) -> (loss, global gradient norm before clipping)``.

    TensorFlow: a ``tf.function`` (traced once, then ~100x faster than eager per-variable updates);
    other backends: the adapter's gradient tape and an eager ``optimizer.apply``.
    """
    from keras import ops

    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True, autograph=False)
        def tf_step(x: Any, y: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                loss = lp.compute(y, model(x, training=True))
            grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            opt.apply(grads, variables)
            return loss, tf.linalg.global_norm(grads)

        return tf_step

    gfn = grad_fn(backend)

    def eager_step(x: Any, y: Any) -> tuple[Any, Any]:
        loss, grads, _ = gfn(lambda pause: (lp.compute(y, model(x, training=True)), None), variables)
        opt.apply([ops.convert_to_tensor(g) for g in grads], variables)
        return loss, math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))

    return eager_step


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


def _loss_in_form(loss: Any, form: str) -> Any:
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
    from netdoctor.adapters._keras_io import _host

    return fn(_host(data))


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


def _rows(x: Any) -> int:
    from keras import tree

    leaf = tree.flatten(x)[0]
    return int(leaf.shape[0]) if len(leaf.shape) else 1


def _max_spike(norms: list[float], warmup: int = 5) -> float | None:
    best = None
    for i in range(warmup, len(norms)):
        med = float(np.median(norms[:i]))
        if med > 0 and math.isfinite(norms[i]):
            best = max(best or 0.0, norms[i] / med)
    return best


def _describe_optimizer(opt: Any) -> str:
    lr = opt.get_config().get("learning_rate")
    return f"{type(opt).__name__}(lr={lr:.3g})" if isinstance(lr, (int, float)) else type(opt).__name__


def _optimizer_code(opt: Any, clip: Any = None) -> str:
    lr = opt.get_config().get("learning_rate")
    args = [f"learning_rate={lr:.3g}"] if isinstance(lr, (int, float)) else []
    if clip is not None:
        args.append(f"global_clipnorm={float(clip):g}")
    return f"keras.optimizers.{type(opt).__name__}({', '.join(args)})"


def _loss_code(loss: Any) -> str:
    import keras

    if isinstance(loss, keras.losses.Loss):
        fl = loss.get_config().get("from_logits")
        return f"keras.losses.{type(loss).__name__}({'' if fl is None else f'from_logits={fl}'})"
    return repr(loss) if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)


def _init_code(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        cls = str(value.get("class_name", ""))
        cfg = {k: v for k, v in (value.get("config") or {}).items() if k != "seed" and v is not None}
        if not cfg:
            return '"' + re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower() + '"'
        return f"keras.initializers.{cls}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"
    return repr(value)


def _ctor(layer: Any, **overrides: Any) -> str:
    """The layer as the user would write it (``layers.Dense(64, activation="relu", name="dense_1")``)."""
    cfg = {**layer.get_config(), **overrides}
    cls, args = type(layer).__name__, []
    for key in ("units", "filters"):
        if key in cfg:
            args.append(str(cfg[key]))
    ks = cfg.get("kernel_size")
    if ks is not None:
        ks = list(ks) if isinstance(ks, (list, tuple)) else [ks]
        args.append(str(ks[0]) if len(set(ks)) == 1 else str(tuple(ks)))
    if cls == "Dropout":
        args.append(f"{cfg.get('rate'):g}")
    act = cfg.get("activation")
    if cls == "Activation":
        args.append(f'"{act}"')
    elif isinstance(act, str) and act != "linear":
        args.append(f'activation="{act}"')
    for key in ("kernel_initializer", "bias_initializer", "embeddings_initializer", "recurrent_initializer"):
        default = {"kernel_initializer": "GlorotUniform", "bias_initializer": "Zeros", "recurrent_initializer":
                   "Orthogonal", "embeddings_initializer": "RandomUniform"}[key]
        v = cfg.get(key)
        if key in overrides or (isinstance(v, dict) and (v.get("class_name") != default or
                                                         {k for k, x in (v.get("config") or {}).items() if x is not None and k != "seed"})):
            args.append(f"{key}={_init_code(v)}")
    if cfg.get("use_bias") is False:
        args.append("use_bias=False")
    args.append(f'name="{layer.name}"')
    return f"layers.{cls}({', '.join(args)})"
