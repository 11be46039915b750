"""Which loss the probe backward pass uses, and what it expects from the model output.

Order of precedence (see ``netdoctor.engine.check``): an explicit ``loss_fn``; else the
loss the model was compiled with (``model.compile(loss=...)``, evaluated through a fresh
``CompileLoss`` so the model's compiled state is not touched); both are ``source="user"``.
Else, with targets, netdoctor's documented default: integer class targets -> sparse
categorical cross-entropy, one-hot -> categorical cross-entropy, 0/1 targets of a one-unit
output -> binary cross-entropy (``from_logits`` chosen from what the output looks like),
float -> MSE (``source="default"``). Without targets: MSE against seeded N(0, 1) targets
(``source="surrogate"``), only to measure gradients.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from netdoctor.adapters._lossprobe import UNIT_EPS, batch_additivity
from netdoctor.adapters._common import NOTE_DEFAULT_LOSS, NOTE_SURROGATE, NOTE_SYNTHETIC_LABELS, label_form, synthetic_labels
from netdoctor.errors import LossError
from netdoctor.snapshot import LossInfo

_XENT = {"categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
         "binary_focal_crossentropy", "categorical_focal_crossentropy", "categoricalcrossentropy",
         "sparsecategoricalcrossentropy", "binarycrossentropy", "binaryfocalcrossentropy",
         "categoricalfocalcrossentropy"}
_PROB = {"kl_divergence", "kld", "kullback_leibler_divergence", "kldivergence"}
_OUTPUT_FIRST = {"y_pred", "pred", "preds", "output", "outputs", "logits", "prediction", "predictions",
                 "input", "yhat", "y_hat", "out", "scores"}
_TARGET_SECOND = {"y_true", "target", "targets", "label", "labels", "y"}


@dataclass
class LossPlan:
    """A resolved loss: how to compute it and how to describe it."""

    info: LossInfo
    compute: Callable[[Any, Any], Any]  # (targets, outputs structure) -> scalar tensor
    note: str | None = None
    sum_ratio: float | None = None  # LossProbe.sum_ratio a stock Keras loss has by construction (else measured)


#: ``LossProbe.sum_ratio`` of each reduction of a stock Keras loss: ``sum`` adds the per-sample
#: terms, the others divide them by the batch (``None`` and ``"none"`` leave a per-sample vector,
#: which the probe loss averages).
_REDUCTION_RATIO = {"sum": 1.0, "sum_over_batch_size": 2.0, "mean": 2.0, "mean_with_sample_weight": 2.0,
                    "none": 2.0, None: 2.0}


def stock_sum_ratio(fn: Any) -> float | None:
    """The sum ratio of one of Keras' own loss classes built on its own loss function, from its
    ``reduction``; ``None`` for anything else (a subclass, a wrapped user function), which is measured.

    Evaluating a Keras loss eagerly twice more (on the two halves of the batch) costs about 1 ms
    each on a CPU, for a value its reduction already fixes: 2 for a mean, 1 for a sum.
    """
    import keras

    module = "keras.src.losses.losses"
    if not isinstance(fn, keras.losses.Loss) or type(fn).__module__ != module \
            or getattr(getattr(fn, "fn", None), "__module__", None) != module:
        return None
    return _REDUCTION_RATIO.get(getattr(fn, "reduction", "unknown"))


def describe(loss: Any) -> tuple[str, str, bool | None]:
    """``(name, expects, from_logits)`` of a Keras loss (string, Loss object or function)."""
    import keras

    if isinstance(loss, (list, tuple)) and loss:
        return describe(next((item for item in loss if item is not None), loss[0]))
    if isinstance(loss, dict) and loss:
        return describe(next(iter(loss.values())))
    name = loss if isinstance(loss, str) else None
    obj = keras.losses.get(loss) if isinstance(loss, str) else loss
    from_logits = None
    if isinstance(obj, keras.losses.Loss):
        try:
            from_logits = obj.get_config().get("from_logits")
        except (NotImplementedError, TypeError, AttributeError):
            from_logits = getattr(obj, "_fn_kwargs", {}).get("from_logits")
        fn = getattr(obj, "fn", None)
        base = getattr(fn, "__name__", None) or type(obj).__name__
        name = name or obj.name or type(obj).__name__
    else:
        base = getattr(obj, "__name__", None) or type(obj).__name__
        name = name or base
        from_logits = getattr(obj, "from_logits", None)
    key = str(base).lower()
    if key in _XENT or str(name).lower() in _XENT:
        fl = bool(from_logits)
        return str(name), ("logits" if fl else "probabilities"), fl
    if key in _PROB:
        return str(name), "probabilities", None
    return str(name), "any", from_logits if isinstance(from_logits, bool) else None


def _output_first(fn: Any) -> bool:
    """True when a callable takes ``(output, target)`` (torch style) rather than Keras' ``(y_true, y_pred)``."""
    mod = getattr(type(fn), "__module__", "") or ""
    if mod.startswith("torch"):
        return True
    fmod = getattr(fn, "__module__", "") or ""
    if fmod.startswith("keras") or mod.startswith("keras"):
        return False
    try:
        params = [p.name.lower() for p in inspect.signature(fn).parameters.values()][:2]
    except (TypeError, ValueError):
        return False
    return bool(params) and (params[0] in _OUTPUT_FIRST or (len(params) > 1 and params[1] in _TARGET_SECOND))


def _scalar(value: Any, name: str) -> Any:
    from keras import ops

    if value is None or not ops.is_tensor(value):
        raise LossError(
            f"the loss {name} returned {type(value).__name__}, not a tensor, so no gradient can flow; "
            "return a keras.ops / backend tensor"
        )
    return ops.mean(value) if len(value.shape) else value


def _wrap(name: str, fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(targets: Any, outputs: Any) -> Any:
        try:
            value = fn(targets, outputs)
        except LossError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of user code is a LossError
            msg = (str(exc).strip().splitlines() or [""])[0][:240]
            raise LossError(
                f"the loss {name} raised {type(exc).__name__}: {msg}; check that the targets "
                f"({_shape_of(targets)}) fit the model output ({_shape_of(outputs)}) and the loss's argument order"
            ) from exc
        return _scalar(value, name)

    return run


def _shape_of(x: Any) -> str:
    from keras import tree

    try:
        shapes = [tuple(int(d) for d in t.shape) for t in tree.flatten(x)]
    except (TypeError, AttributeError, ValueError):
        return type(x).__name__
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def _main(x: Any) -> Any:
    from keras import tree

    flat = tree.flatten(x)
    return flat[0] if flat else x


def plan(model: Any, loss_fn: Any, targets: Any, outputs: Any, looks: str, kind: str | None, seed: int) -> LossPlan:
    """Resolve the probe loss (see the module docstring)."""
    import keras

    compiled = getattr(model, "loss", None) if getattr(model, "_compile_loss", None) is not None else None
    if targets is None and (loss_fn is not None or compiled is not None):
        made = _synthetic_targets(loss_fn if loss_fn is not None else compiled, outputs, seed)
        if made is not None:
            fake_y, what = made
            inner = plan(model, loss_fn, fake_y, outputs, looks, kind, seed)
            note = NOTE_SYNTHETIC_LABELS.format(name=inner.info.name, what=what)
            return LossPlan(inner.info, lambda t, o: inner.compute(fake_y, o), note)
    if loss_fn is not None and targets is not None:
        name, expects, fl = describe(loss_fn) if not isinstance(loss_fn, str) else describe(loss_fn)
        fn = keras.losses.get(loss_fn) if isinstance(loss_fn, str) else loss_fn
        if _output_first(fn):
            call = lambda t, o: fn(_main(o), _main(t))  # noqa: E731
        else:
            call = lambda t, o: fn(_main(t), _main(o))  # noqa: E731
        info = LossInfo(name=name, expects=expects, from_logits=fl, source="user")
        return LossPlan(info, _wrap(name, call), sum_ratio=stock_sum_ratio(fn))
    if compiled is not None and targets is not None:
        name, expects, fl = describe(compiled)
        weights = getattr(model._compile_loss, "_user_loss_weights", None)
        try:
            from keras.src.trainers.compile_utils import CompileLoss

            fresh = CompileLoss(compiled, weights, output_names=getattr(model, "output_names", None))
            call = lambda t, o: fresh(t, o)  # noqa: E731
        except ImportError:  # pragma: no cover - private layout changed
            fn = keras.losses.get(compiled) if isinstance(compiled, str) else compiled
            call = lambda t, o: fn(_main(t), _main(o))  # noqa: E731
        return LossPlan(LossInfo(name=name, expects=expects, from_logits=fl, source="user"), _wrap(name, call))
    if targets is not None:
        loss = _default_loss(kind, looks)
        name, expects, fl = describe(loss)
        call = lambda t, o: loss(_main(t), _main(o))  # noqa: E731
        info = LossInfo(name=name, expects=expects, from_logits=fl, source="default")
        return LossPlan(info, _wrap(name, call), NOTE_DEFAULT_LOSS.format(name=name))
    main = _main(outputs)
    rng = np.random.default_rng(seed)
    fake = rng.standard_normal(tuple(int(d) for d in main.shape)).astype("float32")
    fake_t = keras.ops.convert_to_tensor(fake)
    mse = keras.losses.MeanSquaredError()
    note = NOTE_SURROGATE
    if loss_fn is not None or compiled is not None:
        note += "; the model's own loss needs targets, so it was not used"
    call = lambda t, o: mse(fake_t, keras.ops.cast(_main(o), "float32"))  # noqa: E731
    info = LossInfo(name="mean_squared_error", expects="any", from_logits=None, source="surrogate")
    return LossPlan(info, _wrap("mean_squared_error (surrogate)", call), note)


def _synthetic_targets(loss: Any, outputs: Any, seed: int) -> tuple[Any, str] | None:
    """Seeded random labels for a classification loss on a single-output model, else ``None``."""
    import keras
    from keras import tree

    flat = tree.flatten(outputs)
    if len(flat) != 1 or len(flat[0].shape) < 1:
        return None
    name, _, _ = describe(loss)
    fn_name = getattr(getattr(keras.losses.get(loss) if isinstance(loss, str) else loss, "fn", None), "__name__", "")
    form = label_form(str(name)) or label_form(str(fn_name))
    shape = tuple(int(d) for d in flat[0].shape)
    if form is None or (form != "binary" and len(shape) < 2):
        return None
    labels = synthetic_labels(form, shape, -1, seed)
    what = "0/1" if form == "binary" else f"uniform over {shape[-1]} classes"
    return keras.ops.convert_to_tensor(labels), what


def _default_loss(kind: str | None, looks: str) -> Any:
    import keras

    if kind == "class_index":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=looks != "probabilities")
    if kind == "one_hot":
        return keras.losses.CategoricalCrossentropy(from_logits=looks != "probabilities")
    if kind == "binary":
        return keras.losses.BinaryCrossentropy(from_logits=looks not in ("sigmoid", "probabilities"))
    return keras.losses.MeanSquaredError()


def loss_measures(lp: LossPlan, targets: Any, outputs: Any, value: float) -> tuple[float | None, bool | None]:
    """``(LossProbe.sum_ratio, LossInfo.unit_range)`` of a user loss on a single output and single targets.

    Both re-evaluate the loss on the output the probe already computed (no forward pass): on the
    two halves of its rows, and, when the loss is non-finite, on the output clamped into (0, 1).
    ``value`` is the probe's own loss on all rows: the whole batch of an even split is not evaluated again.
    """
    import keras
    from keras import ops, tree

    flat_o, flat_t = tree.flatten(outputs), tree.flatten(targets) if targets is not None else []
    if lp.info.source != "user" or len(flat_o) != 1 or len(flat_t) != 1:
        return None, None
    out, y = flat_o[0], flat_t[0]
    if len(out.shape) == 0 or len(y.shape) == 0 or int(out.shape[0]) != int(y.shape[0]):
        return None, None

    def on(t: Any, o: Any) -> float:
        return float(np.asarray(ops.convert_to_numpy(lp.compute(t, o))).reshape(-1)[0])

    rows = int(out.shape[0])
    h = rows // 2
    halves: list[Any] = []

    def part(k: int, a: int, b: int) -> Any:
        """Rows ``a:b`` of ``[y, out][k]``; the two halves come from one split of each tensor."""
        if (a, b) not in ((0, h), (h, 2 * h)):
            return (y, out)[k][a:b]
        if not halves:  # two equal sections: one tf.split (split points go through a dozen slicing ops)
            halves.extend(ops.split(t if 2 * h == rows else t[:2 * h], 2, axis=0) for t in (y, out))
        return halves[k][0 if a == 0 else 1]

    def loss_on(a: int, b: int) -> float:
        return on(tree.pack_sequence_as(targets, [part(0, a, b)]), tree.pack_sequence_as(outputs, [part(1, a, b)]))

    known = lp.sum_ratio if getattr(out, "_keras_mask", None) is None else None  # a mask weights the mean
    ratio = batch_additivity(loss_on, rows, whole=value, known=known)  # the probe's own loss: same output, same targets
    unit = None
    if not np.isfinite(value) and "float" in str(out.dtype):
        host = np.asarray(ops.convert_to_numpy(out))
        host = host[np.isfinite(host)]
        if host.size and (host.min() < 0 or host.max() > 1):
            try:
                clamped = keras.ops.clip(out, UNIT_EPS, 1 - UNIT_EPS)
                unit = bool(np.isfinite(on(targets, tree.pack_sequence_as(outputs, [clamped]))))
            except Exception:  # noqa: BLE001 - a loss that cannot take the clamped output: not measured
                unit = None
    return ratio, unit
