"""Load a model file the way pytest collects tests: by naming convention.

A *model file* is a Python file that defines

* the model: a zero-argument function ``build_model``, ``get_model``, ``create_model`` or
  ``make_model`` (first found wins), or a module-level ``model`` object;
  ``path.py::NAME`` picks a function, class or object by name instead;
* optionally the data: ``sample_batch()``, ``get_batch()`` or ``load_data()`` returning
  ``x`` or ``(x, y)``, where ``x`` is an array/tensor, a tuple/list or a dict of them
  (a multi-input model returns ``((x1, x2), y)``);
* optionally the loss: a module-level callable ``loss_fn``, ``criterion`` or ``loss``
  (``(output, target) -> loss``);
* optionally ``input_shape`` (one sample, without the batch axis) for synthetic inputs.

Saved Keras models (``.keras``, ``.h5``) are loaded through the Keras adapter.
Everything a user can get wrong raises a :class:`~netdoctor.errors.NetdoctorError` with a
one-line message that says what to do next.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from netdoctor.errors import DataError, ModelLoadError, NetdoctorError

MODEL_FUNCTIONS = ("build_model", "get_model", "create_model", "make_model")
MODEL_OBJECTS = ("model",)
DATA_FUNCTIONS = ("sample_batch", "get_batch", "load_data")
LOSS_NAMES = ("loss_fn", "criterion", "loss")
INPUT_SHAPE_NAMES = ("input_shape", "INPUT_SHAPE")
SAVED_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")


@dataclass
class LoadedModel:
    """A model ready to be checked, with whatever the file provided around it.

    Attributes:
        path: The model file (as given, without ``::NAME``).
        model: The model object (``torch.nn.Module`` or Keras 3 model).
        inputs: Probe inputs, or ``None`` (synthetic inputs will be used).
        targets: Probe targets, or ``None``.
        loss_fn: ``(output, target) -> loss``, or ``None`` (the engine's default).
        input_shape: Shape of one sample for synthetic inputs, or ``None``.
        framework: ``"torch"`` or ``"keras"``.
        source: Where the model came from, e.g. ``"build_model()"`` or ``"saved model"``.
        data_source: Where the data came from, e.g. ``"sample_batch()"``, ``"data.npz"``.
        notes: Remarks for the report header (e.g. why the file's loss was not used).
    """

    path: str
    model: Any
    inputs: Any = None
    targets: Any = None
    loss_fn: Any = None
    input_shape: tuple[int, ...] | None = None
    framework: str = ""
    source: str = ""
    data_source: str | None = None
    notes: tuple[str, ...] = ()


def split_spec(spec: str) -> tuple[str, str | None]:
    """Split ``"path.py::NAME"`` into ``("path.py", "NAME")``; no ``::`` gives ``(spec, None)``."""
    if "::" in spec:
        path, _, name = spec.partition("::")
        return path, (name.strip() or None)
    return spec, None


def load_model_file(
    path: str,
    name: str | None = None,
    *,
    data: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    weights: str | None = None,
    unsafe: bool = False,
) -> LoadedModel:
    """Import a model file (or load a saved Keras model) and find model, data and loss.

    Args:
        path: A ``.py`` model file, ``path.py::NAME``, or a ``.keras``/``.h5`` saved model.
        name: The function, class or object to use as the model (overrides the convention).
        data: An ``.npz`` file with arrays ``x`` (and ``y``), or an ``.npy`` file with
            ``x``; replaces the file's own data.
        input_shape: Synthesize inputs of this per-sample shape; the file's data is
            ignored (the data rules are then skipped).
        weights: A checkpoint to load into the built model.
        unsafe: Allow loading code/pickles from saved models and checkpoints.

    Returns:
        The :class:`LoadedModel`.

    Raises:
        netdoctor.errors.ModelLoadError: Missing file, failing import, no model found.
        netdoctor.errors.DataError: Data that cannot be used.
        netdoctor.errors.UnsupportedModelError: The object is not a torch/Keras 3 model.
    """
    from netdoctor._frameworks import detect_framework

    path, spec_name = split_spec(path)
    name = name or spec_name
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"no such file: {path}; check the path (run from the project root?)")
    if p.is_dir():
        raise ModelLoadError(f"{path} is a directory; name the model files, e.g. {path}/model.py")
    suffix = p.suffix.lower()
    if suffix in CHECKPOINT_SUFFIXES:
        raise ModelLoadError(
            f"{p.name} is a checkpoint (weights only, no architecture); write a model file with "
            f"build_model() and run `netdoctor check model.py --weights {path}`"
        )

    if suffix in SAVED_MODEL_SUFFIXES:
        if name:
            raise ModelLoadError(f"::{name} does not apply to a saved model; drop it")
        if weights:
            raise ModelLoadError(f"--weights does not apply to a saved model ({p.name}); drop it")
        from netdoctor.adapters import keras as keras_adapter

        model = keras_adapter.load_saved_model(str(p), unsafe=unsafe)
        loaded = LoadedModel(path=path, model=model, framework="keras", source="saved model")
    elif suffix == ".py":
        module = import_model_file(p)
        model, source = _find_model(module, p, name)
        loaded = LoadedModel(path=path, model=model, source=source)
        loaded.framework = detect_framework(model)
        loaded.inputs, loaded.targets, loaded.data_source = _find_data(module, p)
        loaded.loss_fn = _find_loss(module, loaded.framework)
        loaded.input_shape = _find_input_shape(module)
        if weights:
            load_weights(loaded, weights, unsafe=unsafe)
    else:
        raise ModelLoadError(
            f"cannot check {p.name}: expected a .py model file or a saved Keras model (.keras, .h5)"
        )
    if not loaded.framework:
        loaded.framework = detect_framework(loaded.model)

    if data is not None:
        loaded.inputs, loaded.targets = load_npz(data)
        loaded.data_source = data
    if input_shape is not None:
        loaded.inputs, loaded.targets, loaded.data_source = None, None, None
        loaded.input_shape = tuple(int(d) for d in input_shape)
    if loaded.inputs is None and loaded.loss_fn is not None:
        # synthetic inputs come without targets, and a loss like CrossEntropyLoss needs them
        loaded.loss_fn = None
        loaded.notes += ("the file's loss is not used: synthetic inputs have no targets",)
    return loaded


# -- importing --------------------------------------------------------------------------
def import_model_file(path: Path) -> types.ModuleType:
    """Import ``path`` as a fresh module, with its directory on ``sys.path`` while importing.

    Raises:
        ModelLoadError: On a syntax error or any exception raised by the import.
    """
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    modname = f"_netdoctor_model_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for odd suffixes
        raise ModelLoadError(f"cannot import {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        with _on_sys_path(path.parent):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(modname, None)
        where = f" at line {exc.lineno}" if exc.lineno else ""
        fname = Path(exc.filename).name if exc.filename else path.name
        raise ModelLoadError(
            f"syntax error in {fname}{where}: {exc.msg}; fix the file and rerun"
        ) from exc
    except ModuleNotFoundError as exc:
        sys.modules.pop(modname, None)
        raise ModelLoadError(_missing_module_message(path.name, exc)) from exc
    except NetdoctorError:
        sys.modules.pop(modname, None)
        raise
    except BaseException as exc:
        sys.modules.pop(modname, None)
        if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
            raise
        raise ModelLoadError(
            f"importing {path.name} failed{_line_of(exc, path)}: {_describe(exc)}; "
            f"run `python {path.name}` to see the traceback, or add --debug"
        ) from exc
    module.__dict__["__netdoctor_dir__"] = str(path.parent)
    return module


class _on_sys_path:
    """Context manager: put a directory first on ``sys.path``, then restore ``sys.path``."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)

    def __enter__(self) -> None:
        self.before = sys.path.count(self.directory)
        sys.path.insert(0, self.directory)

    def __exit__(self, *exc: object) -> None:
        if sys.path.count(self.directory) > self.before:
            sys.path.remove(self.directory)  # the first occurrence: ours


def _missing_module_message(filename: str, exc: ModuleNotFoundError) -> str:
    mod = (exc.name or "").split(".")[0]
    hint = {
        "torch": "pip install torch (CPU: pip install torch --index-url https://download.pytorch.org/whl/cpu)",
        "keras": 'pip install "netdoctor-ml[keras]"',
        "tensorflow": 'pip install "netdoctor-ml[keras]"',
    }.get(mod, f"pip install {mod}" if mod else "install it")
    return f"{filename} imports {mod or 'a module'}, which is not installed; {hint}"


def _describe(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _line_of(exc: BaseException, path: Path) -> str:
    """``" at line N"`` for the deepest traceback frame inside ``path``, else ``""``."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""


# -- finding things ---------------------------------------------------------------------
def _find_model(module: types.ModuleType, path: Path, name: str | None) -> tuple[Any, str]:
    ns = vars(module)
    if name:
        if name not in ns:
            defined = [k for k, v in ns.items() if not k.startswith("_") and (callable(v) or _looks_like_model(v))
                       and getattr(v, "__module__", module.__name__) == module.__name__]
            hint = f" (it defines: {', '.join(defined[:8])})" if defined else ""
            raise ModelLoadError(f"{path.name} has no {name!r}{hint}; check the name after ::")
        return _materialize(ns[name], name, path), (f"{name}()" if _is_factory(ns[name]) else name)
    for fname in MODEL_FUNCTIONS:
        obj = ns.get(fname)
        if obj is not None and callable(obj):
            return _materialize(obj, fname, path), f"{fname}()"
    for oname in MODEL_OBJECTS:
        if oname in ns and ns[oname] is not None:
            return ns[oname], oname
    looked = ", ".join(f"{f}()" for f in MODEL_FUNCTIONS)
    raise ModelLoadError(
        f"no model found in {path.name}: looked for a function {looked} or a module-level "
        f"`model`; define one, or pick one with {path.name}::NAME"
    )


def _is_factory(obj: Any) -> bool:
    return (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj)) and not _looks_like_model(obj)


def _looks_like_model(obj: Any) -> bool:
    """An instance (not a class/function) whose class hierarchy is torch's or Keras'."""
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return False
    mods = {getattr(k, "__module__", "") or "" for k in type(obj).__mro__}
    return any(m.startswith(("torch.", "keras.", "keras")) for m in mods)


def _materialize(obj: Any, label: str, path: Path) -> Any:
    """Call a zero-argument factory (function or class); return a model object as is."""
    if not _is_factory(obj):
        return obj
    _require_zero_args(obj, label, path)
    try:
        with _on_sys_path(path.resolve().parent):
            return obj()
    except NetdoctorError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{label}() in {path.name} raised{_line_of(exc, path.resolve())} {_describe(exc)}; "
            "fix it (add --debug for the traceback)"
        ) from exc


def _require_zero_args(func: Callable[..., Any], label: str, path: Path) -> None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: just try calling
        return
    required = [
        p.name for p in sig.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if required:
        raise ModelLoadError(
            f"{label}() in {path.name} needs arguments ({', '.join(required)}); netdoctor calls it "
            "with none: give them defaults"
        )


def _find_data(module: types.ModuleType, path: Path) -> tuple[Any, Any, str | None]:
    ns = vars(module)
    for fname in DATA_FUNCTIONS:
        func = ns.get(fname)
        if func is None or not callable(func):
            continue
        _require_zero_args(func, fname, path)
        try:
            with _on_sys_path(path.resolve().parent):
                batch = func()
        except NetdoctorError:
            raise
        except Exception as exc:
            raise DataError(
                f"{fname}() in {path.name} raised{_line_of(exc, path.resolve())} {_describe(exc)}; "
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


def _find_loss(module: types.ModuleType, framework: str) -> Any:
    ns = vars(module)
    for lname in LOSS_NAMES:
        obj = ns.get(lname)
        if obj is None or isinstance(obj, types.ModuleType):
            continue
        if isinstance(obj, str) and framework == "keras":
            import keras

            try:
                return keras.losses.get(obj)
            except Exception as exc:
                raise ModelLoadError(f"{lname} = {obj!r} is not a Keras loss name ({_describe(exc)})") from exc
        if callable(obj) and not inspect.isclass(obj):
            return obj
        if inspect.isclass(obj):
            raise ModelLoadError(
                f"{lname} is the class {obj.__name__}, not a loss function; instantiate it: "
                f"{lname} = {obj.__name__}()"
            )
    return None


def _find_input_shape(module: types.ModuleType) -> tuple[int, ...] | None:
    ns = vars(module)
    for sname in INPUT_SHAPE_NAMES:
        value = ns.get(sname)
        if isinstance(value, (tuple, list)) and value and all(isinstance(d, int) for d in value):
            return tuple(value)
    return None


# -- data and weight files --------------------------------------------------------------
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
        raise DataError(f"cannot read {path} as numpy data ({_describe(exc)}); {hint}") from exc
    if isinstance(loaded, np.ndarray):
        return loaded, None
    try:
        keys = list(loaded.files)
        if "x" not in keys:
            if len(keys) == 1:
                return loaded[keys[0]], None
            found = ", ".join(keys) or "nothing"
            raise DataError(f"{path} has no array 'x' (found: {found}); {hint}")
        try:
            x = loaded["x"]
            y = loaded["y"] if "y" in keys else None
        except ValueError as exc:  # object arrays need pickle
            raise DataError(f"{path} holds object arrays, which netdoctor does not unpickle; {hint}") from exc
    finally:
        loaded.close()
    if y is not None and len(y) != len(x):
        raise DataError(f"{path}: x has {len(x)} samples but y has {len(y)}; they must match")
    return x, y


def load_weights(loaded: LoadedModel, weights: str, *, unsafe: bool = False) -> None:
    """Load a checkpoint into ``loaded.model`` through its framework's adapter."""
    if not Path(weights).is_file():
        raise ModelLoadError(f"no such weights file: {weights}; check the path")
    if loaded.framework == "torch":
        from netdoctor.adapters import torch as adapter

        adapter.load_weights(loaded.model, weights, unsafe=unsafe)
    elif loaded.framework == "keras":
        from netdoctor.adapters import keras as adapter

        adapter.load_weights(loaded.model, weights)
    else:  # pragma: no cover - detect_framework only returns the two
        raise ModelLoadError(f"cannot load weights into a {loaded.framework} model")
