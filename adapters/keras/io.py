"""Data in and models in: probe batches, synthetic inputs, target kinds, loading files.

Inputs are matched to a functional model's declared inputs (a single array, a list in
input order, or a dict by input name), cut to the first ``max_samples`` samples, checked
against the declared shapes (a mismatch is a :class:`~netdoctor.errors.DataError` naming
the input and both shapes) and converted to backend tensors of the declared dtype.
Without data, inputs are synthesized from the declared (or given) shape: seeded N(0, 1)
floats, ids below the vocabulary size of the Embedding an integer input feeds, ``None``
dimensions ``SYNTH_DIM`` long, ``_common.synthetic_batch`` samples (as for torch). An
unbuilt model is built first (a Sequential from the sample shape, a subclassed model by one
inference-mode call), since it has no weights to check before.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from netdoctor.adapters._common import synthetic_batch
from netdoctor.adapters.keras.graph import functional_of
from netdoctor.adapters.keras.kinds import class_names, kind_of
from netdoctor.adapters.keras.stats import tensor_stats
from netdoctor.errors import DataError, ModelLoadError
from netdoctor.snapshot import KIND_EMBEDDING, WEIGHT_KINDS, DataStats, ProbeSettings, TensorStats

SYNTH_DIM = 32  # size of a None (non-batch) dimension in a synthetic input


def _is_tensor(x: Any) -> bool:
    """A backend tensor (a numpy array, the common probe input, is answered without asking the backend:
    TensorFlow's ``is_tensor`` of a non-tensor walks a runtime protocol check, about 6 us a call)."""
    if isinstance(x, (np.ndarray, np.generic, int, float, bool, str)) or x is None:
        return False
    from keras import ops

    return bool(ops.is_tensor(x))


def as_numpy(x: Any) -> np.ndarray:
    """A tensor or array-like as a host numpy array."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(x)) if _is_tensor(x) else np.asarray(x)


def take(x: Any, n: int) -> Any:
    """The first ``n`` samples of a leaf (array or tensor), as is otherwise."""
    if _is_tensor(x):
        return x[:n] if len(x.shape) >= 1 and x.shape[0] is not None and x.shape[0] > n else x
    a = np.asarray(x)
    if a.dtype == object:
        raise DataError(f"cannot use data of type {type(x).__name__} (object array); pass numeric arrays")
    return a[:n] if a.ndim >= 1 and a.shape[0] > n else a


def named_leaves(data: Any, base: str = "x") -> list[tuple[str, Any]]:
    """``[("x", a)]``, ``[("x[0]", a), ("x[1]", b)]`` or ``[(key, a), ...]`` for a dict."""
    if isinstance(data, Mapping):
        return [(str(k), v) for k, v in data.items()]
    if isinstance(data, (list, tuple)) and data and all(_array_like(v) for v in data):
        return [(f"{base}[{i}]", v) for i, v in enumerate(data)]
    return [(base, data)]


def _array_like(v: Any) -> bool:
    return _is_tensor(v) or isinstance(v, np.ndarray) or hasattr(v, "__array__")


def _fmt(shape: Sequence[Any]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def match_inputs(fn: Any, inputs: Any, n: int) -> list[Any]:
    """Order the user's inputs like ``fn._inputs`` and cut them to ``n`` samples."""
    refs = list(fn._inputs)
    names = [t.name for t in refs]
    if isinstance(inputs, Mapping):
        struct = fn._inputs_struct
        keys = sorted(struct) if isinstance(struct, Mapping) and len(struct) == len(refs) else names
        missing = [k for k in keys if k not in inputs]
        if missing:
            raise DataError(
                f"the data has no entry for model input '{missing[0]}' (data keys: {sorted(map(str, inputs))}); "
                f"pass a dict with keys {keys}"
            )
        flat = [inputs[k] for k in keys]
    elif len(refs) == 1:
        flat = [inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 and _array_like(inputs[0])
                else inputs]
    elif isinstance(inputs, (list, tuple)):
        flat = list(inputs)
    else:
        flat = [inputs]
    if len(flat) != len(refs):
        raise DataError(
            f"the model has {len(refs)} inputs ({', '.join(names)}) but the data has {len(flat)}; "
            "pass a list in input order or a dict keyed by input name"
        )
    return [take(x, n) for x in flat]


def to_model_tensors(fn: Any, flat: list[Any]) -> list[Any]:
    """Check shapes against the declared inputs and convert to backend tensors."""
    from keras import ops

    out = []
    for x, ref in zip(flat, fn._inputs):
        shape = tuple(x.shape)
        want = tuple(ref.shape)
        if len(shape) == len(want) + 1 and shape[-1] == 1:
            x = x[..., 0] if not _is_tensor(x) else ops.squeeze(x, axis=-1)
        elif len(shape) + 1 == len(want) and want[-1] == 1:
            x = np.expand_dims(x, -1) if not _is_tensor(x) else ops.expand_dims(x, -1)
        got = tuple(x.shape)
        bad = len(got) != len(want) or any(w is not None and w != g for w, g in zip(want[1:], got[1:]))
        if bad:
            layer = ref._keras_history[0].name if getattr(ref, "_keras_history", None) else ref.name
            raise DataError(
                f"model input '{layer}' expects shape {_fmt(want)} but the data has shape {_fmt(shape)}; "
                f"pass samples shaped {_fmt(want[1:])} (batch axis first)"
            )
        try:
            out.append(ops.convert_to_tensor(x, dtype=ref.dtype))
        except (TypeError, ValueError) as exc:
            raise DataError(f"cannot convert the data for input '{ref.name}' to {ref.dtype}: {exc}") from exc
    return out


def to_tensors(data: Any, n: int) -> Any:
    """Cut every leaf of a structure to ``n`` samples and convert it to a backend tensor."""
    from keras import ops, tree

    def conv(x: Any) -> Any:
        x = take(x, n)
        if _is_tensor(x):
            return x
        a = np.asarray(x)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        return ops.convert_to_tensor(a)

    if isinstance(data, Mapping):
        return {k: conv(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)) and data and all(_array_like(v) for v in data):
        return type(data)(conv(v) for v in data) if isinstance(data, list) else tuple(conv(v) for v in data)
    return tree.map_structure(conv, data) if isinstance(data, (list, tuple)) else conv(data)


def check_data(inputs: Any) -> None:
    """Refuse probe data that cannot be measured: an empty batch or complex values.

    Raises:
        DataError: Saying which input and what to pass instead.
    """
    for name, leaf in named_leaves(inputs):
        shape = tuple(getattr(leaf, "shape", ()) or ())
        what = "the input" if name == "x" else name
        if shape and shape[0] == 0:
            raise DataError(f"the probe batch is empty: {what} has 0 samples (shape {shape}); give at least one "
                            "sample (--max-samples must be >= 1)")
        if "complex" in str(getattr(leaf, "dtype", "")):
            raise DataError(f"{what} is complex ({leaf.dtype}); netdoctor checks real-valued models: pass real "
                            "inputs")


def synthetic_shape(declared: Sequence[Any], override: Sequence[int] | None, batch: int) -> tuple[int, ...]:
    """Concrete batch shape: ``override`` (one sample) or the declared shape with None filled."""
    if override is not None:
        try:
            dims = tuple(int(d) for d in override)
        except (TypeError, ValueError):
            dims = ()
        if not dims or any(d <= 0 for d in dims):
            raise DataError(f"input_shape {tuple(override)!r} is not a shape; give the positive sizes of one sample "
                            "without the batch axis, e.g. (32, 32, 3)")
        return (batch,) + dims
    return (batch,) + tuple(SYNTH_DIM if d is None else int(d) for d in list(declared)[1:])


def synthetic_shapes(declared: Sequence[Sequence[Any]], overrides: Sequence[Sequence[int] | None],
                     max_samples: int) -> list[tuple[int, ...]]:
    """Batch shapes of the synthetic inputs (one per declared input), sharing one batch size:
    :func:`~netdoctor.adapters._common.synthetic_batch` of one sample's values over all inputs."""
    one = [synthetic_shape(d, o, 1) for d, o in zip(declared, overrides)]
    batch = synthetic_batch(sum(math.prod(s[1:]) for s in one), max_samples)
    return [(batch,) + s[1:] for s in one]


def synthesize(shape: tuple[int, ...], dtype: str, rng: np.random.Generator, id_range: int | None) -> np.ndarray:
    """Seeded synthetic data: N(0, 1) floats, ids in ``[0, id_range)`` for integer inputs."""
    if dtype.startswith(("int", "uint")):
        return rng.integers(0, max(int(id_range or 10), 1), size=shape).astype(dtype)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "string":
        raise DataError("cannot synthesize string inputs; pass real data (netdoctor.check(model, x))")
    return rng.standard_normal(shape).astype(dtype if dtype.startswith(("float", "bfloat")) else "float32")


def target_kind(y: Any, out_units: int | None) -> str | None:
    """``class_index``, ``one_hot``, ``binary`` or ``float`` for a target array."""
    if y is None:
        return None
    a = as_numpy(y)
    if a.size == 0 or a.dtype.kind not in "biuf":
        return None
    integral = a.dtype.kind in "biu" or bool(np.all(np.isfinite(a)) and np.all(a == np.round(a)))
    binary = bool(np.all((a == 0) | (a == 1)))
    if a.ndim >= 2 and a.shape[-1] > 1 and binary and np.allclose(a.sum(-1), 1.0):
        if out_units is not None and out_units == a.shape[-1]:
            return "one_hot"
    if binary and (out_units == 1 or (a.ndim >= 2 and out_units == a.shape[-1])):
        return "binary"
    if integral and (out_units or 0) > 1 and (a.ndim == 1 or a.shape[-1] == 1 or a.dtype.kind in "iu"):
        return "class_index"
    return "float"


def num_samples(x: Any) -> int | None:
    """Size of the batch axis of the first leaf that has one."""
    from keras import tree

    for leaf in tree.flatten(x):
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape) >= 1 and shape[0] is not None:
            return int(shape[0])
    return None


def ensure_built(model: Any, inputs: Any, input_shape: Any, n: int, seed: int) -> None:
    """Build an unbuilt model (it has no weights to check otherwise)."""
    if "Sequential" in class_names(model):
        if functional_of(model) is not None:
            return
        first = named_leaves(inputs)[0][1] if inputs is not None else None
        shape = tuple(take(first, n).shape[1:]) if first is not None else input_shape
        if shape is not None and not model.built:
            model.build((None,) + tuple(int(d) for d in shape))
    if getattr(model, "built", True):
        return
    if inputs is not None:
        call_subclassed(model, to_tensors(inputs, n), training=False)
    elif input_shape is not None:
        call_subclassed(model, synthetic_subclassed(model, input_shape, n, seed), training=False)
    else:
        raise DataError(
            f"{type(model).__name__} is not built and has no declared input shape; pass inputs "
            "(netdoctor.check(model, x)) or input_shape=(...) for one sample"
        )


def call_subclassed(model: Any, x: Any, training: bool = True) -> Any:
    """``model(x, training=...)``; a rejection of the data becomes a one-line DataError."""
    from keras import tree

    try:
        return model(x, training=training)
    except Exception as exc:  # noqa: BLE001 - data problems become DataError, the rest is re-raised
        if not any(n in ("InvalidArgumentError", "ValueError", "TypeError", "IndexError") for n in class_names(exc)):
            raise
        shapes = [tuple(t.shape) for t in tree.flatten(x) if hasattr(t, "shape")]
        msg = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DataError(
            f"model '{model.name}' ({type(model).__name__}) failed on inputs of shape "
            f"{shapes[0] if len(shapes) == 1 else shapes} ({type(exc).__name__}: {msg}); "
            "pass data shaped like the model input"
        ) from exc


def synthetic_subclassed(model: Any, input_shape: Any, n: int, seed: int) -> Any:
    """Seeded inputs for an untraceable model: ``input_shape`` or the shape it was built with."""
    from keras import ops

    rng = np.random.default_rng(seed)
    if input_shape is None:
        built = getattr(model, "_build_shapes_dict", None) or {}
        shp = next(iter(built.values()), None) if built else None
        if not isinstance(shp, (list, tuple)) or not shp or not all(isinstance(d, (int, type(None))) for d in shp):
            raise DataError(
                f"cannot tell the input shape of the subclassed model {type(model).__name__}; pass inputs "
                "(netdoctor.check(model, x)) or input_shape=(...) for one sample"
            )
        declared, override = (None,) + tuple(shp[1:]), None
    else:
        declared, override = (None,), tuple(input_shape)
    first = next((c for c in getattr(model, "_layers", ()) if kind_of(c) != "other"), None)
    ids = getattr(first, "input_dim", None) if first is not None and kind_of(first) == KIND_EMBEDDING else None
    shape = synthetic_shapes([declared], [override], n)[0]
    return ops.convert_to_tensor(synthesize(shape, "int32" if ids else "float32", rng, ids))


def model_inputs(model: Any, tr: Any, fn: Any, inputs: Any, input_shape: Any, n: int, seed: int) -> Any:
    """Backend tensors for the probe: the user's data or seeded synthetic inputs."""
    from keras import ops

    if inputs is not None:
        check_data(inputs)
    if tr is None:
        return to_tensors(inputs, n) if inputs is not None else synthetic_subclassed(model, input_shape, n, seed)
    if inputs is not None:
        return to_model_tensors(fn, match_inputs(fn, inputs, n))
    rng = np.random.default_rng(seed)
    refs = list(fn._inputs)
    overrides: list[Any] = [None] * len(refs)
    if input_shape is not None:
        if isinstance(input_shape, dict):
            overrides = [input_shape.get(t.name) for t in refs]
        elif all(isinstance(d, (int, np.integer)) for d in input_shape):
            overrides = [tuple(input_shape)] + [None] * (len(refs) - 1)
        else:
            overrides = list(input_shape) + [None] * (len(refs) - len(input_shape))
    out = []
    shapes = synthetic_shapes([ref.shape for ref in refs], overrides, n)
    for i, (ref, shape) in enumerate(zip(refs, shapes)):
        ids = _id_range(tr, tr.input_keys[i])
        out.append(ops.convert_to_tensor(synthesize(shape, str(ref.dtype), rng, ids), dtype=ref.dtype))
    return out


def _id_range(tr: Any, key: Any) -> int | None:
    """Vocabulary size of the first Embedding (or token layer) fed by an input."""
    frontier, seen = {key}, set()
    for s in tr.steps:
        if not frontier.intersection(s.in_keys) or id(s) in seen:
            continue
        seen.add(id(s))
        for attr in ("input_dim", "num_tokens", "vocabulary_size"):
            v = getattr(s.op, attr, None)
            if isinstance(v, int) and v > 0:
                return v
        if s.kind in WEIGHT_KINDS:
            continue
        frontier.update(s.out_keys)
    return None


def data_stats(inputs: Any, targets: Any, n: int, settings: ProbeSettings, kind: str | None,
               out_units: int | None, channels_first: bool = False,
               known: Callable[[str, Any], TensorStats | None] | None = None, sparsity: bool = True) -> DataStats:
    """Statistics of the real data per feature.

    The feature axis is the last one, or axis 1 of 3+-axis inputs of a channels_first model.
    ``known(name, leaf)``, given, returns the same statistics of an input leaf (its first ``n``
    samples) where they were already measured (the probe pass reduced the very tensor), else ``None``.
    ``sparsity``: see :func:`~netdoctor.adapters.keras.stats.tensor_stats`.
    """
    from keras import ops, tree

    def stats(leaf: Any, axis_ok: bool = True) -> TensorStats:
        a = take(leaf, n)
        # host data stays a numpy array: tensor_stats reduces it in place (a round trip through a
        # backend tensor cost more than the reduction of a batch of labels)
        t = a if ops.is_tensor(a) else np.asarray(a)
        dtype = str(t.dtype) if isinstance(t, np.ndarray) else None
        if len(t.shape) == 1 and axis_ok:  # one scalar per sample: one feature
            t = t[:, None] if isinstance(t, np.ndarray) else ops.expand_dims(t, -1)
        axis = 1 if channels_first and axis_ok and len(t.shape) >= 3 else -1
        return tensor_stats(t, max_units=settings.max_units, per_unit=True, unit_axis=axis, dtype=dtype,
                            sparsity=sparsity)[0]

    def input_stats(name: str, leaf: Any) -> TensorStats:
        got = known(name, take(leaf, n)) if known is not None else None
        return got if got is not None else stats(leaf)

    ins = {name: input_stats(name, leaf) for name, leaf in named_leaves(inputs)}
    tstats = None
    if targets is not None:
        main = tree.flatten(targets)[0] if isinstance(targets, (list, tuple, dict)) else targets
        tstats = stats(main, axis_ok=False)
        kind = kind or target_kind(take(main, n), out_units)
    num = next(iter(ins.values())).shape[0] if ins and next(iter(ins.values())).shape else 0
    return DataStats(inputs=ins, targets=tstats, target_kind=kind, num_samples=int(num))


def load_saved_model(path: str, *, unsafe: bool = False) -> Any:
    """Load a ``.keras`` or legacy ``.h5`` model with its compiled loss.

    Raises:
        ModelLoadError: Missing/unreadable file, or a Lambda layer without ``unsafe``.
    """
    import os
    import zipfile

    import keras

    if str(path).lower().endswith(".keras") and os.path.isfile(path):
        size = os.path.getsize(path)
        if size == 0:
            raise ModelLoadError(f"{path} is empty (0 bytes): not a Keras model; save it again with "
                                 "model.save('model.keras')")
        if not zipfile.is_zipfile(path):
            raise ModelLoadError(f"{path} is not a .keras file: a .keras model is a zip archive and this is not "
                                 "one (corrupt, truncated or another format); save it again with "
                                 "model.save('model.keras')")
    try:
        return keras.saving.load_model(path, compile=True, safe_mode=not unsafe)
    except ValueError as exc:
        msg = str(exc)
        if "Lambda" in msg or "safe_mode" in msg or "unsafe" in msg.lower():
            raise ModelLoadError(
                f"{path} contains a Lambda layer; loading it runs arbitrary code. "
                "Re-run with --unsafe if you trust the file"
            ) from exc
        raise ModelLoadError(f"cannot load {path}: {_first_line(msg)}; check that it is a Keras 3 model file") from exc
    except (OSError, ImportError, TypeError, KeyError) as exc:
        raise ModelLoadError(
            f"cannot load {path}: {type(exc).__name__}: {_first_line(str(exc))}; "
            "check the path and that the file is a .keras or .h5 Keras model"
        ) from exc


def load_weights(model: Any, path: str, *, unsafe: bool = False) -> None:
    """``model.load_weights(path)``; any failure becomes a one-line ModelLoadError.

    ``unsafe`` is part of the adapters' common signature and has nothing to allow here: Keras
    weight files hold values only, never code.
    """
    try:
        model.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types here
        raise ModelLoadError(
            f"cannot load weights {path} into {getattr(model, 'name', type(model).__name__)}: "
            f"{type(exc).__name__}: {_first_line(str(exc))}; check that the checkpoint matches the model"
        ) from exc


def _first_line(msg: str) -> str:
    line = msg.strip().splitlines()[0] if msg.strip() else ""
    return line[:300]
