"""PyTorch Lightning: a ``LightningModule`` checked as it is, with its own data and its own loss.

* :func:`is_lightning_module` / :func:`lightning_classes` recognise ``LightningModule`` and
  ``LightningDataModule`` subclasses by their class hierarchy (``lightning`` and the older
  ``pytorch_lightning`` package alike), without importing Lightning.
* :func:`datamodule_batch` instantiates a ``LightningDataModule`` with no arguments, runs
  ``setup("fit")`` and takes the first batch of ``train_dataloader()``.
* :class:`TrainingStep` is the probe loss of a ``LightningModule``: ``training_step(batch, 0)``
  run outside a ``Trainer`` (``self.log``/``self.log_dict`` are no-ops, ``self.trainer`` is a
  stand-in with the attributes a first training step reads). The torch adapter runs it inside
  its probe, so the forward pass the step makes is measured and the loss it returns is the one
  differentiated. :func:`outside_trainer` puts every attribute it set back.
"""

from __future__ import annotations

import contextlib
import inspect
import types
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

_MODULE_CLASSES = {"lightning.pytorch.core.module.LightningModule", "pytorch_lightning.core.module.LightningModule"}
_DATAMODULE_CLASSES = {"lightning.pytorch.core.datamodule.LightningDataModule",
                       "pytorch_lightning.core.datamodule.LightningDataModule"}


def _mro_names(cls: type) -> set[str]:
    return {f"{getattr(k, '__module__', '')}.{k.__qualname__}" for k in getattr(cls, "__mro__", ())}


def is_lightning_module(obj: Any) -> bool:
    """``obj`` is a ``LightningModule`` instance."""
    return not inspect.isclass(obj) and bool(_mro_names(type(obj)) & _MODULE_CLASSES)


def is_module_class(obj: Any) -> bool:
    """``obj`` is a ``LightningModule`` subclass (not the base class itself)."""
    return inspect.isclass(obj) and bool(_mro_names(obj) & _MODULE_CLASSES) and \
        f"{obj.__module__}.{obj.__qualname__}" not in _MODULE_CLASSES


def is_datamodule_class(obj: Any) -> bool:
    """``obj`` is a ``LightningDataModule`` subclass (not the base class itself)."""
    return inspect.isclass(obj) and bool(_mro_names(obj) & _DATAMODULE_CLASSES) and \
        f"{obj.__module__}.{obj.__qualname__}" not in _DATAMODULE_CLASSES


def defined_in(module: types.ModuleType, predicate: Any) -> list[tuple[str, type]]:
    """``(name, class)`` of the classes defined in ``module`` itself (not imported) that satisfy ``predicate``."""
    return [(k, v) for k, v in vars(module).items()
            if inspect.isclass(v) and v.__module__ == module.__name__ and predicate(v)]


def prepared(module: Any) -> Any:
    """Call ``configure_model()`` when the class defines it (Lightning builds layers there); return the module."""
    if overrides(module, "configure_model"):
        module.configure_model()
    return module


def _base_hook(cls: type, name: str) -> Any:
    for k in cls.__mro__:
        if f"{k.__module__}.{k.__qualname__}" in _MODULE_CLASSES | _DATAMODULE_CLASSES:
            return getattr(k, name, None)
    return None


def overrides(obj: Any, name: str) -> bool:
    """The class of ``obj`` defines ``name`` itself rather than inheriting Lightning's default hook."""
    base = _base_hook(type(obj), name)
    mine = getattr(type(obj), name, None)
    return mine is not None and mine is not base


def datamodule_batch(datamodule: Any) -> Any:
    """``setup("fit")``, then the first batch of ``train_dataloader()`` (the loader object is returned)."""
    datamodule.setup("fit")
    return datamodule.train_dataloader()


class ProbeTrainer:
    """What ``self.trainer`` reads during a probe ``training_step`` outside a real ``Trainer``.

    The first step of a first epoch on one device, in full precision; logging is off
    (``barebones``). Reading any other attribute raises an ``AttributeError`` that names it.
    """

    current_epoch = 0
    global_step = 0
    training = True
    validating = testing = predicting = sanity_checking = False
    barebones = True
    fast_dev_run = False
    world_size = num_devices = num_nodes = 1
    local_rank = global_rank = node_rank = 0
    is_global_zero = True
    max_epochs = 1
    max_steps = -1
    min_epochs = min_steps = None
    accumulate_grad_batches = 1
    gradient_clip_val = None
    log_every_n_steps = 50
    precision = "32-true"
    logger = None
    loggers: list = []
    callbacks: list = []
    optimizers: list = []
    lr_scheduler_configs: list = []
    num_training_batches = 1
    estimated_stepping_batches = 1
    callback_metrics: dict = {}
    logged_metrics: dict = {}
    progress_bar_metrics: dict = {}

    def __init__(self, module: Any, datamodule: Any = None) -> None:
        self.lightning_module = module
        self.model = module
        self.datamodule = datamodule

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"training_step() read self.trainer.{name}, which netdoctor's probe (outside a Trainer) does not "
            "provide; guard it, or check the model with a data function and loss_fn instead")


@contextlib.contextmanager
def outside_trainer(module: Any, datamodule: Any = None) -> Iterator[None]:
    """Let ``training_step`` run without a ``Trainer``; put every attribute back afterwards."""
    from torch import nn

    lightning = [m for m in module.modules() if is_lightning_module(m)] if isinstance(module, nn.Module) else [module]
    saved = []
    for m in lightning:
        saved.append((m, {k: m.__dict__[k] for k in ("log", "log_dict") if k in m.__dict__}, m.__dict__.get("_trainer")))
        object.__setattr__(m, "log", _no_log)
        object.__setattr__(m, "log_dict", _no_log)
        if m.__dict__.get("_trainer") is None:
            object.__setattr__(m, "_trainer", ProbeTrainer(module, datamodule))
    metrics = _metric_states(module)
    try:
        yield
    finally:
        for m, attrs, trainer in saved:
            for k in ("log", "log_dict"):
                if k in attrs:
                    object.__setattr__(m, k, attrs[k])
                else:
                    m.__dict__.pop(k, None)
            object.__setattr__(m, "_trainer", trainer)
        _restore_metric_states(metrics)


def _no_log(*args: Any, **kwargs: Any) -> None:
    return None


def _metric_states(module: Any) -> list[tuple[Any, dict[str, Any]]]:
    """torchmetrics ``Metric`` states (``training_step`` updates them), to put back afterwards."""
    import copy

    out = []
    modules = module.modules() if hasattr(module, "modules") else ()
    for m in modules:
        defaults = getattr(m, "_defaults", None)
        if isinstance(defaults, Mapping) and hasattr(m, "_update_count"):
            names = [*defaults, "_update_count", "_computed", "_forward_cache", "_update_called"]
            out.append((m, {k: copy.copy(m.__dict__[k]) for k in names if k in m.__dict__}))
    return out


def _restore_metric_states(saved: list[tuple[Any, dict[str, Any]]]) -> None:
    for m, state in saved:
        for k, v in state.items():
            object.__setattr__(m, k, v)


@dataclass(frozen=True, eq=False)
class TrainingStep:
    """The probe loss of a ``LightningModule``: its own ``training_step(batch, 0)``.

    Passed as ``loss_fn`` with the batch as ``inputs``; the torch adapter calls
    :meth:`__call__` with the batch on the model's device (capped to ``max_samples``) inside its
    probe, in place of ``model(x)`` followed by a loss.

    Attributes:
        module: The ``LightningModule``.
        datamodule: The ``LightningDataModule`` the batch came from, if any (``self.trainer.datamodule``).
    """

    module: Any
    datamodule: Any = None

    name = "training_step()"

    def __call__(self, batch: Any) -> Any:
        """Run ``training_step(batch, 0)`` and return the loss tensor it produced."""
        from netdoctor.errors import LossError

        if getattr(self.module, "automatic_optimization", True) is False:
            raise LossError(f"{type(self.module).__name__} uses manual optimization: its training_step() steps the "
                            "optimizer itself, which a probe must not do; check its network with a data function "
                            "and loss_fn instead")
        with outside_trainer(self.module, self.datamodule):
            try:
                out = self.module.training_step(batch, 0)
            except AttributeError as exc:
                if "netdoctor" in str(exc):
                    raise LossError(str(exc)) from exc
                raise
        if isinstance(out, Mapping):
            if "loss" not in out:
                raise LossError(f"{type(self.module).__name__}.training_step() returned a dict without 'loss' "
                                f"(keys: {', '.join(map(str, out))}); return the loss or {{'loss': loss, ...}}")
            out = out["loss"]
        if out is None:
            raise LossError(f"{type(self.module).__name__}.training_step() returned None for the probe batch "
                            "(it skips the batch); return the loss")
        return out
