"""Load a model file the way pytest collects tests: by naming convention, as the file is written.

A *model file* is a Python file that defines (each list in the order it is tried; the README's
"What netdoctor finds in your file" table is the user-facing copy)

* the model: ``path.py::NAME`` (a function, class or object); a zero-argument function
  ``build_model``, ``get_model``, ``create_model`` or ``make_model``; a module-level ``model``
  object; the ``LightningModule`` subclass defined in the file (then its ``configure_model()``);
  the one ``nn.Module``/``keras.Model`` class defined in the file that needs no arguments and is
  not a building block of another;
* the data: ``sample_batch()``, ``get_batch()`` or ``load_data()`` returning ``x``, ``(x, y)``
  or a loader; for a LightningModule a ``LightningDataModule`` in the file, then the module's
  own ``train_dataloader()``; a module-level DataLoader / ``tf.data.Dataset`` / ``PyDataset``;
  a LightningModule's ``example_input_array``; ``input_shape`` for synthetic inputs
  (:mod:`netdoctor.modelfile.datafiles`);
* the loss: a LightningModule's own ``training_step``
  (:class:`~netdoctor.integrations.lightning_module.TrainingStep`), else a module-level callable
  ``loss_fn``, ``criterion`` or ``loss`` (``(output, target) -> loss``).

Saved Keras models (``.keras``, ``.h5``) are loaded through the Keras adapter, Hugging Face
folders by :mod:`netdoctor.integrations.hf_pretrained`. Importing the file and calling its
functions is :mod:`netdoctor.modelfile.usercode`, seeded by :mod:`netdoctor.modelfile.seeding`.
Everything a user can get wrong raises a :class:`~netdoctor.errors.NetdoctorError` with a
one-line message that says what to do next.
"""

from __future__ import annotations

import inspect
import re
import types
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdoctor.errors import ModelLoadError, NetdoctorError, NoModelError
from netdoctor.frameworks import detect_framework, get_adapter
from netdoctor.integrations import lightning_module as lightning
from netdoctor.modelfile.datafiles import (
    call_for_batch,
    find_batch,
    find_input_shape,
    find_loader,
    load_npz,
    split_batch,
)
from netdoctor.modelfile.seeding import seeded
from netdoctor.modelfile.usercode import (
    SAVED_MODEL_SUFFIXES,
    describe_exception,
    import_model_file,
    line_of,
    on_sys_path,
    require_zero_args,
    scan_framework,
)

MODEL_FUNCTIONS = ("build_model", "get_model", "create_model", "make_model")
MODEL_OBJECTS = ("model",)
LOSS_NAMES = ("loss_fn", "criterion", "loss")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors")


@dataclass
class LoadedModel:
    """A model ready to be checked, with whatever the file provided around it.

    Attributes:
        path: The model file (as given, without ``::NAME``).
        model: The model object (``torch.nn.Module`` or Keras 3 model).
        inputs: Probe inputs, or ``None`` (synthetic inputs will be used).
        targets: Probe targets, or ``None``.
        loss_fn: ``(output, target) -> loss``, a LightningModule's ``TrainingStep`` (then
            ``inputs`` is the batch as its loader yields it), or ``None`` (the adapter's default).
        input_shape: Shape of one sample for synthetic inputs, or ``None``.
        framework: ``"torch"`` or ``"keras"``.
        source: Where the model came from, e.g. ``"build_model()"`` or ``"saved model"``.
        data_source: Where the data came from, e.g. ``"sample_batch()"``, ``"data.npz"``.
        notes: Remarks for the report header (e.g. why the file's loss was not used).
        layer_lines: ``{layer name: line of the file that created it}`` (Keras model files;
            reports point there, since a Keras layer's name is often not in the source).
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
    layer_lines: dict[str, int] = field(default_factory=dict)


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
    seed: int = 0,
) -> LoadedModel:
    """Import a model file (or load a saved model) and find model, data and loss.

    Args:
        path: A ``.py`` model file, ``path.py::NAME``, a ``.keras``/``.h5`` saved model, or a
            Hugging Face model folder (``config.json`` + weights, written by ``save_pretrained``).
        name: The function, class or object to use as the model (overrides the convention).
        data: An ``.npz`` file with arrays ``x`` (and ``y``), or an ``.npy`` file with
            ``x``; replaces the file's own data.
        input_shape: Synthesize inputs of this per-sample shape when there is no data: explicit
            data wins (``data``, or the file's own data function or loader, or the saved
            folder's batch), and a note says the shape was not used. It replaces the file's
            own ``input_shape``. The data rules are skipped on synthetic inputs.
        weights: A checkpoint to load into the built model.
        unsafe: Allow loading code/pickles from saved models and checkpoints.
        seed: Seed of every RNG while the file's code runs (``--seed``); the caller's RNG
            states are restored afterwards (:mod:`netdoctor.modelfile.seeding`).

    Returns:
        The :class:`LoadedModel`.

    Raises:
        netdoctor.errors.ModelLoadError: Missing file, failing import, no model found.
        netdoctor.errors.DataError: Data that cannot be used.
        netdoctor.errors.UnsupportedModelError: The object is not a torch/Keras 3 model.
    """
    path, spec_name = split_spec(path)
    name = name or spec_name
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"no such file: {path}; check the path (run from the project root?)")
    suffix = p.suffix.lower()
    if p.is_dir():
        from netdoctor.integrations import hf_pretrained as huggingface

        if not huggingface.is_model_folder(p):
            raise ModelLoadError(f"{path} is a directory without config.json; name the model files, "
                                 f"e.g. {p / 'model.py'}, or point at a folder written by save_pretrained()")
        if name or weights:
            raise ModelLoadError(f"{'::' + name if name else '--weights'} does not apply to a Hugging Face folder; drop it")
        model, batch, source, where = huggingface.load_folder(p, unsafe=unsafe, seed=seed)
        loaded = LoadedModel(path=path, model=model, inputs=batch, framework="torch", source=source,
                             data_source=where)
    elif suffix in CHECKPOINT_SUFFIXES:
        raise ModelLoadError(
            f"{p.name} is a checkpoint (weights only, no architecture); write a model file with "
            f"build_model() and run `netdoctor check model.py --weights {path}`"
        )
    elif suffix in SAVED_MODEL_SUFFIXES:
        if name:
            raise ModelLoadError(f"::{name} does not apply to a saved model; drop it")
        if weights:
            raise ModelLoadError(f"--weights does not apply to a saved model ({p.name}); drop it")
        model = get_adapter("keras").load_saved_model(str(p), unsafe=unsafe)
        loaded = LoadedModel(path=path, model=model, framework="keras", source="saved model")
    elif suffix == ".py":
        scanned = scan_framework(str(p))
        frameworks = {"torch", "keras"} if scanned == "mixed" else {scanned}
        with seeded(seed, frameworks):
            loaded = _load_python(p, path, name, weights=weights, unsafe=unsafe, want_data=data is None,
                                  locate=frameworks & {"torch", "keras"})
    else:
        raise ModelLoadError(
            f"cannot check {p.name}: expected a .py model file, a saved Keras model (.keras, .h5) "
            "or a Hugging Face model folder"
        )

    if data is not None:
        x, y = load_npz(data)
        loaded.data_source = data
        if isinstance(loaded.loss_fn, lightning.TrainingStep):
            loaded.inputs, loaded.targets = ((x, y) if y is not None else x), None
            if y is None:  # a training step needs its targets: measure the forward pass only
                loaded.loss_fn = None
                loaded.notes += (f"training_step() is not used: {data} has no targets (y)",)
        else:
            loaded.inputs, loaded.targets = x, y
    if input_shape is not None:
        if loaded.inputs is None:
            loaded.input_shape = tuple(int(d) for d in input_shape)
        else:  # explicit data wins: --input-shape is for files without data
            loaded.notes += (f"--input-shape not used: the data comes from {loaded.data_source or 'the file'}",)
    return loaded


def _load_python(p: Path, path: str, name: str | None, *, weights: str | None, unsafe: bool,
                 want_data: bool, locate: set[str]) -> LoadedModel:
    """Import a ``.py`` model file and find its model, data and loss (inside the seeded context).

    For each framework in ``locate`` (those the file imports), the line creating each layer is
    noted while the file is imported and its model built (``layer_lines``).
    """
    with contextlib.ExitStack() as stack:
        found = {fw: stack.enter_context(get_adapter(fw).layer_origins(str(p))) for fw in sorted(locate)}
        module = import_model_file(p)
        model, source = _find_model(module, p, name)
    loaded = LoadedModel(path=path, model=model, source=source)
    loaded.framework = detect_framework(model)
    if loaded.framework in found:
        loaded.layer_lines = found[loaded.framework].lines(model)
    loaded.loss_fn = _find_loss(module, loaded.framework)
    loaded.input_shape = find_input_shape(module)
    if weights:
        load_weights(loaded, weights, unsafe=unsafe)
    if lightning.is_lightning_module(model):
        _lightning_data(loaded, module, p, want_data)
    elif want_data:
        batch, where = find_batch(module, p)
        if batch is None:
            batch, where = find_loader(module, p)
        if batch is not None:
            loaded.inputs, loaded.targets = split_batch(batch, where)
            loaded.data_source = where
    return loaded


def _lightning_data(loaded: LoadedModel, module: types.ModuleType, p: Path, want_data: bool) -> None:
    """A LightningModule's batch and loss: its own ``training_step`` on the first batch it would train on.

    The batch comes from a data function, a ``LightningDataModule`` in the file (``setup("fit")``,
    then ``train_dataloader()``), the module's own ``train_dataloader()``, a module-level loader,
    or ``example_input_array`` (inputs only: the forward pass is measured, with a surrogate loss).
    """
    lm = loaded.model
    step = lightning.TrainingStep(lm)
    if not want_data:
        loaded.loss_fn = step  # --data decides in load_model_file
        return
    batch, where = find_batch(module, p)
    if batch is None:
        modules = lightning.defined_in(module, lightning.is_datamodule_class)
        if len(modules) > 1:
            names = ", ".join(n for n, _ in modules)
            raise ModelLoadError(f"{p.name} defines several LightningDataModules ({names}); "
                                 "add sample_batch() or pass --data")
        if modules:
            dm_name, dm_cls = modules[0]
            dm = _materialize(dm_cls, dm_name, p)
            step = lightning.TrainingStep(lm, dm)
            batch, where = call_for_batch(lambda: lightning.datamodule_batch(dm), f"{dm_name}.train_dataloader()", p)
            where = f"{dm_name}: setup('fit'), first batch of train_dataloader()"
    if batch is None and lightning.overrides(lm, "train_dataloader"):
        batch, _ = call_for_batch(lm.train_dataloader, f"{type(lm).__name__}.train_dataloader()", p)
        where = f"{type(lm).__name__}.train_dataloader() (first batch)"
    if batch is None:
        batch, where = find_loader(module, p)
    if batch is not None:
        loaded.inputs, loaded.targets, loaded.data_source = batch, None, where
        if loaded.loss_fn is not None:
            loaded.notes += ("the file's loss is not used: training_step() computes the loss",)
        loaded.loss_fn = step
        return
    example = getattr(lm, "example_input_array", None)
    shape = _placeholder_shape(example)
    if shape is not None:  # Lightning's docs write example_input_array = torch.zeros(...): a shape, not data
        loaded.input_shape, loaded.data_source = shape, "example_input_array (all zeros: its shape only)"
        loaded.notes += ("example_input_array is all zeros, a placeholder for the input shape: the probe feeds "
                         "seeded N(0, 1) inputs of that shape and skips the data rules; add a LightningDataModule "
                         "or train_dataloader() to measure real data and the real loss",)
    elif example is not None:
        loaded.inputs, loaded.data_source = example, "example_input_array (inputs only)"
        loaded.notes += ("training_step() is not used: example_input_array has no targets; add a "
                         "LightningDataModule or train_dataloader() to measure the real loss",)


def _placeholder_shape(example: Any) -> Any:
    """The per-sample shape of an all-zero float ``example_input_array`` (a tuple of shapes for a
    tuple of them), else ``None``: zeros carry no data, and a batch of them would zero every
    first-layer weight gradient (dL/dW = x^T delta)."""
    tensors = list(example) if isinstance(example, (tuple, list)) else [example]
    shapes = []
    for t in tensors:
        if not (hasattr(t, "is_floating_point") and t.is_floating_point() and t.dim() >= 1 and t.numel()
                and not bool(t.any())):
            return None
        shapes.append(tuple(int(d) for d in t.shape[1:]))
    if not shapes:
        return None
    return shapes[0] if not isinstance(example, (tuple, list)) else tuple(shapes)


# -- finding things ---------------------------------------------------------------------
def _find_model(module: types.ModuleType, path: Path, name: str | None) -> tuple[Any, str]:
    ns = vars(module)
    if name:
        if name not in ns:
            defined = [k for k, v in ns.items() if not k.startswith("_") and (callable(v) or _looks_like_model(v))
                       and getattr(v, "__module__", module.__name__) == module.__name__]
            hint = f" (it defines: {', '.join(defined[:8])})" if defined else ""
            raise ModelLoadError(f"{path.name} has no {name!r}{hint}; check the name after ::")
        model = _materialize(ns[name], name, path)
        return lightning.prepared(model) if lightning.is_lightning_module(model) else model, \
            (f"{name}()" if _is_factory(ns[name]) else name)
    for fname in MODEL_FUNCTIONS:
        obj = ns.get(fname)
        if obj is not None and callable(obj):
            return _materialize(obj, fname, path), f"{fname}()"
    for oname in MODEL_OBJECTS:
        if oname in ns and ns[oname] is not None:
            return ns[oname], oname
    lit = lightning.defined_in(module, lightning.is_module_class)
    if len(lit) > 1:
        names = ", ".join(n for n, _ in lit)
        raise ModelLoadError(f"{path.name} defines several LightningModules ({names}); pick one with "
                             f"{path.name}::{lit[0][0]}")
    if lit:
        cname, cls = lit[0]
        return lightning.prepared(_materialize(cls, cname, path)), f"{cname}()"
    found = _model_class(module, path)
    if found is not None:
        return _materialize(found, found.__name__, path), f"{found.__name__}()"
    looked = ", ".join(f"{f}()" for f in MODEL_FUNCTIONS)
    raise NoModelError(
        f"no model found in {path.name}: looked for a function {looked}, a module-level `model`, a "
        f"LightningModule or an nn.Module/keras.Model class; define one, or pick one with {path.name}::NAME"
    )


def _model_class(module: types.ModuleType, path: Path) -> type | None:
    """The one ``nn.Module``/``keras.Model`` class defined in the file that is a whole model.

    Classes that need constructor arguments are left out, and so are classes another candidate
    uses by name (building blocks of the model). Several candidates left: ambiguous, an error.
    """
    cands = lightning.defined_in(module, _is_model_class)
    cands = [(n, c) for n, c in cands if _zero_arg_class(c)]
    if len(cands) > 1:
        sources = {n: _source(c) for n, c in cands}
        top = [(n, c) for n, c in cands if not any(re.search(rf"\b{n}\b", src) for m, src in sources.items() if m != n)]
        cands = top or cands
    if len(cands) > 1:
        names = ", ".join(n for n, _ in cands)
        raise ModelLoadError(f"{path.name} defines several model classes ({names}); pick one with "
                             f"{path.name}::{cands[-1][0]}, or add build_model()")
    return cands[0][1] if cands else None


def _is_model_class(cls: type) -> bool:
    for klass in cls.__mro__[1:]:
        qual = f"{klass.__module__}.{klass.__qualname__}"
        if qual == "torch.nn.modules.module.Module":
            return True
        if klass.__module__.startswith("keras") and klass.__name__ == "Model":
            return True
    return False


def _zero_arg_class(cls: type) -> bool:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in sig.parameters.values())


def _source(cls: type) -> str:
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        return ""


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
    require_zero_args(obj, label, path)
    try:
        with on_sys_path(path.resolve().parent):
            return obj()
    except NetdoctorError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"{label}() in {path.name} raised{line_of(exc, path.resolve())} {describe_exception(exc)}; "
            "fix it (add --debug for the traceback)"
        ) from exc


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
                raise ModelLoadError(f"{lname} = {obj!r} is not a Keras loss name ({describe_exception(exc)})") from exc
        if callable(obj) and not inspect.isclass(obj):
            return obj
        if inspect.isclass(obj):
            raise ModelLoadError(
                f"{lname} is the class {obj.__name__}, not a loss function; instantiate it: "
                f"{lname} = {obj.__name__}()"
            )
    return None


# -- weight files ---------------------------------------------------------------------
def load_weights(loaded: LoadedModel, weights: str, *, unsafe: bool = False) -> None:
    """Load a checkpoint into ``loaded.model`` through its framework's adapter."""
    if not Path(weights).is_file():
        raise ModelLoadError(f"no such weights file: {weights}; check the path")
    if loaded.framework == "torch":
        get_adapter("torch").load_weights(loaded.model, weights, unsafe=unsafe)
    elif loaded.framework == "keras":
        get_adapter("keras").load_weights(loaded.model, weights)
    else:  # pragma: no cover - detect_framework only returns the two
        raise ModelLoadError(f"cannot load weights into a {loaded.framework} model")
