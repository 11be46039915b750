"""The probe data of a model file: its data function, an ``.npz``/``.npy`` file, its input shape.

* a data function (``sample_batch()``, ``get_batch()`` or ``load_data()``) returns ``x`` or
  ``(x, y)``, where ``x`` is an array/tensor, a tuple/list or a dict of them (a
  multi-input model returns ``((x1, x2), y)``); :func:`split_batch` unpacks and checks it;
* ``--data FILE`` names an ``.npz`` file with arrays ``x`` (and ``y``) or an ``.npy`` file
  with ``x`` (:func:`load_npz`);
* a module-level ``input_shape`` (one sample, without the batch axis) asks for synthetic
  inputs.

Data that cannot be used raises a :class:`~netdoctor.errors.DataError`.
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
    """``(x, y, source)`` from the file's first data function (:data:`DATA_FUNCTIONS`), else ``(None, None, None)``."""
    ns = vars(module)
    for fname in DATA_FUNCTIONS:
        func = ns.get(fname)
        if func is None or not callable(func):
            continue
        require_zero_args(func, fname, path)
        try:
            with on_sys_path(path.resolve().parent):
                batch = func()
        except NetdoctorError:
            raise
        except Exception as exc:
            raise DataError(
                f"{fname}() in {path.name} raised{line_of(exc, path.resolve())} {describe_exception(exc)}; "
                "fix it, or pass --data FILE.npz / --input-shape"
            ) from exc
        x, y = split_batch(batch, f"{fname}()")
        return x, y, f"{fname}()"
    return None, None, None


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
