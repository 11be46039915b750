"""The probe data of a model file: a data function, a data loader, an ``.npz``/``.npy`` file, an input shape.

* a data function (``sample_batch()``, ``get_batch()`` or ``load_data()``) returns ``x`` or
  ``(x, y)``, where ``x`` is an array/tensor, a tuple/list or a dict of them (a
  multi-input model returns ``((x1, x2), y)``), or a loader (below) whose first batch is used;
* a module-level data loader: a ``torch.utils.data.DataLoader``, a ``tf.data.Dataset`` or a
  ``keras.utils.PyDataset`` (a name with ``train`` in it is preferred; ``val``/``test`` ones
  are used only when there is nothing else) gives its first batch (:func:`find_loader`);
* ``--data FILE`` names an ``.npz`` file with arrays ``x`` (and ``y``) or an ``.npy`` file
  with ``x`` (:func:`load_npz`);
* a module-level ``input_shape`` (one sample, without the batch axis) asks for synthetic
  inputs.

A batch is kept as the loader yields it (:func:`find_batch`) so a model's own training step
can take it; :func:`split_batch` unpacks it into ``(x, y)``. The adapters cap it to
``--max-samples``. Data that cannot be used raises a :class:`~netdoctor.errors.DataError`.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from netdoctor.errors import DataError, NetdoctorError
from netdoctor.modelfile.usercode import describe_exception, line_of, on_sys_path, require_zero_args

DATA_FUNCTIONS = ("sample_batch", "get_batch", "load_data")
INPUT_SHAPE_NAMES = ("input_shape", "INPUT_SHAPE")


def find_data(module: types.ModuleType, path: Path) -> tuple[Any, Any, str | None]:
    """``(x, y, source)`` from the file's data function or module-level loader, else ``(None, None, None)``."""
    batch, source = find_batch(module, path)
    if batch is None:
        batch, source = find_loader(module, path)
    if batch is None:
        return None, None, None
    x, y = split_batch(batch, source)
    return x, y, source


def find_batch(module: types.ModuleType, path: Path) -> tuple[Any, str | None]:
    """``(batch, source)`` from the file's first data function (:data:`DATA_FUNCTIONS`), else ``(None, None)``.

    A function that returns a loader gives the loader's first batch.
    """
    ns = vars(module)
    for fname in DATA_FUNCTIONS:
        func = ns.get(fname)
        if func is None or not callable(func):
            continue
        return call_for_batch(func, f"{fname}()", path)
    return None, None


def call_for_batch(func: Any, label: str, path: Path) -> tuple[Any, str]:
    """Call a zero-argument data function of ``path``; a loader it returns gives its first batch."""
    require_zero_args(func, label.rstrip("()"), path)
    try:
        with on_sys_path(path.resolve().parent):
            value = func()
    except NetdoctorError:
        raise
    except Exception as exc:
        raise DataError(
            f"{label} in {path.name} raised{line_of(exc, path.resolve())} {describe_exception(exc)}; "
            "fix it, or pass --data FILE.npz / --input-shape"
        ) from exc
    if value is None:
        raise DataError(f"{label} returned None; return x or (x, y) with arrays or tensors")
    kind = loader_kind(value)
    if kind is None:
        return value, label
    return first_batch(value, f"{label} ({kind})", path), f"{label} (first batch of its {kind})"


def find_loader(module: types.ModuleType, path: Path) -> tuple[Any, str | None]:
    """``(first batch, source)`` of a module-level loader, else ``(None, None)``.

    Names with ``train`` in them come first; ``val``/``test``/``eval`` loaders only when there is nothing else.
    """
    found = [(name, kind) for name, value in vars(module).items()
             if not name.startswith("_") and (kind := loader_kind(value)) is not None]
    if not found:
        return None, None

    def rank(item: tuple[str, str]) -> int:
        low = item[0].lower()
        return 0 if "train" in low else 2 if any(w in low for w in ("val", "test", "eval", "valid")) else 1

    name, kind = min(found, key=rank)  # stable: the first defined wins among equals
    return first_batch(vars(module)[name], f"{name} ({kind})", path), f"{name} (first batch of the {kind})"


#: Class-hierarchy names of the loaders whose first batch is the probe batch.
_LOADERS = {
    "torch.utils.data.dataloader.DataLoader": "DataLoader",
    "tensorflow.python.data.ops.dataset_ops.DatasetV2": "tf.data.Dataset",
    "keras.src.trainers.data_adapters.py_dataset_adapter.PyDataset": "PyDataset",
}


def loader_kind(value: Any) -> str | None:
    """``"DataLoader"``, ``"tf.data.Dataset"``, ``"PyDataset"``, ``"iterator"`` (a generator or other
    iterator of batches) for something that yields batches, else ``None`` (arrays, tensors and
    plain containers are batches themselves)."""
    if isinstance(value, type) or isinstance(value, (tuple, list, dict, str, bytes)):
        return None
    for klass in type(value).__mro__:
        kind = _LOADERS.get(f"{klass.__module__}.{klass.__qualname__}")
        if kind:
            return kind
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return None
    if isinstance(value, types.GeneratorType) or (hasattr(value, "__next__") and hasattr(value, "__iter__")):
        return "iterator"
    return None


def first_batch(loader: Any, origin: str, path: Path) -> Any:
    """The first batch a loader yields, with TensorFlow tensors as numpy arrays.

    A ``tf.data``/``PyDataset`` batch of ``(x, y, sample_weight)`` drops the weights.
    """
    kind = loader_kind(loader)
    try:
        with on_sys_path(path.resolve().parent):
            batch = loader[0] if kind == "PyDataset" else next(iter(loader))
    except StopIteration:
        raise DataError(f"{origin} in {path.name} yields no batch; give it data") from None
    except NetdoctorError:
        raise
    except Exception as exc:
        raise DataError(
            f"the first batch of {origin} in {path.name} raised{line_of(exc, path.resolve())} "
            f"{describe_exception(exc)}; fix it, or pass --data FILE.npz / --input-shape"
        ) from exc
    batch = _host(batch)
    if kind in ("tf.data.Dataset", "PyDataset") and isinstance(batch, tuple) and len(batch) == 3:
        batch = batch[:2]
    return batch


def _host(value: Any) -> Any:
    """TensorFlow tensors -> numpy arrays, keeping the structure (torch tensors stay tensors)."""
    if isinstance(value, dict):
        return {k: _host(v) for k, v in value.items()}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_host(v) for v in value)
    if isinstance(value, list):
        return [_host(v) for v in value]
    if (type(value).__module__ or "").startswith("tensorflow") and hasattr(value, "numpy"):
        return value.numpy()
    return value


def split_batch(batch: Any, origin: str = "the data") -> tuple[Any, Any]:
    """Split what a data function returned into ``(x, y)``.

    A tuple/list of exactly two items is ``(x, y)``; anything else is ``x`` alone.

    Raises:
        DataError: ``None`` or a value that is neither an array, a tensor nor a
            tuple/list/dict of them.
    """
    if batch is None:
        raise DataError(f"{origin} returned None; return x or (x, y) with arrays or tensors")
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        x, y = batch
        if x is None:
            raise DataError(f"{origin} returned (None, y); return x or (x, y) with arrays or tensors")
    else:
        x, y = batch, None
    _check_leaves(x, origin, "x")
    if y is not None:
        _check_leaves(y, origin, "y")
    return x, y


def _check_leaves(value: Any, origin: str, what: str) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _check_leaves(v, origin, what)
        return
    if isinstance(value, (tuple, list)):
        if value and all(isinstance(v, (int, float, bool)) for v in value):
            return  # a plain list of numbers: numpy will take it
        for v in value:
            _check_leaves(v, origin, what)
        return
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return
    raise DataError(
        f"{origin} returned {what} of type {type(value).__name__}; return numpy arrays or "
        "tensors (or a tuple/list/dict of them)"
    )


def find_input_shape(module: types.ModuleType) -> tuple[int, ...] | None:
    """The file's ``input_shape`` (or ``INPUT_SHAPE``) as a tuple of ints, else ``None``."""
    ns = vars(module)
    for sname in INPUT_SHAPE_NAMES:
        value = ns.get(sname)
        if isinstance(value, (tuple, list)) and value and all(isinstance(d, int) for d in value):
            return tuple(value)
    return None


def load_npz(path: str) -> tuple[Any, Any]:
    """Read ``x`` (and ``y``) from an ``.npz`` file, or ``x`` from an ``.npy`` file.

    Raises:
        DataError: The file is missing, unreadable or has no ``x``.
    """
    import numpy as np

    hint = "save it with numpy.savez(path, x=inputs, y=targets)"
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no such data file: {path}; {hint}")
    try:
        loaded = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"cannot read {path} as numpy data ({describe_exception(exc)}); {hint}") from exc
    if isinstance(loaded, np.ndarray):
        return loaded, None
    try:
        keys = list(loaded.files)
        if "x" not in keys:
            if len(keys) == 1:
                return loaded[keys[0]], None
            found = ", ".join(keys) or "nothing"
            raise DataError(f"{path} has no array 'x' (found: {found}); {hint}")
        x = _member(loaded, "x", path, hint)
        y = _member(loaded, "y", path, hint) if "y" in keys else None
    finally:
        loaded.close()
    for name, arr in (("x", x), ("y", y)):
        if arr is not None and arr.ndim == 0:
            raise DataError(f"{name} in {path} is a single number (shape ()); save one row per sample, "
                            f"e.g. {name} of shape (N, ...)")
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: x has {len(x)} samples but y has {len(y)}; they must match")
    return x, y


def _member(loaded: Any, name: str, path: str, hint: str) -> Any:
    """One array of an ``.npz`` file, or a :class:`DataError` saying why it cannot be read."""
    try:
        return loaded[name]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(f"{name} in {path} is an object array, which netdoctor does not unpickle; "
                            f"{hint}") from exc
        raise DataError(f"{name} in {path} is not a readable array (corrupt or truncated: "
                        f"{describe_exception(exc)}); {hint}") from exc
    except Exception as exc:  # zlib/zipfile/OSError: a damaged archive member
        raise DataError(f"{name} in {path} is not a readable array (corrupt or truncated: "
                        f"{describe_exception(exc)}); {hint}") from exc
