"""``NetdoctorCallback`` for the Hugging Face ``transformers.Trainer``.

Usage::

    from netdoctor.integrations.transformers import NetdoctorCallback
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[NetdoctorCallback(every=50)])
    trainer.train()

Where it measures (transformers 5.x): the monitor steps in ``on_optimizer_step``, which the
Trainer calls after ``optimizer.step()`` and before ``model.zero_grad()``: the gradients of the
step are still there, as in a hand-written loop (``on_step_end`` comes after ``zero_grad``: every
gradient would be ``None``). The step's loss is the ``loss`` field of the model's own output,
taken by a forward hook on the model while training (unscaled by gradient accumulation); with
a model that returns no ``loss`` (a custom ``compute_loss``) the monitor stays off and says so.

Clipping: the Trainer clips gradients at ``max_grad_norm`` (1.0 by default) before both
``on_pre_optimizer_step`` and ``on_optimizer_step``, so the gradients the monitor reads are the
clipped ones, whose norm never exceeds 1: spikes and exploding gradients would be invisible.
The Trainer measures the norm before clipping (``Trainer._get_grad_norm``, what it logs as
``grad_norm``); the callback wraps that method on the running Trainer for the length of
``train()`` (found on the call stack at ``on_train_begin``; the wrapper returns the value
unchanged, and is removed at ``on_train_end``) and passes each step's value to
``monitor.step(loss, grad_norm=...)``, which records it as the step's gradient norm and scales
the per-layer gradient norms back to it. With a Trainer that has no such method (another
transformers version) the monitor sees the clipped gradients and says so once.

Findings are logged on rank zero on the ``"netdoctor.monitor"`` logger; ``on_error="stop"``
sets ``control.should_training_stop``; ``"raise"`` raises
:class:`netdoctor.monitor.TrainingError` out of ``trainer.train()``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable

from transformers import TrainerCallback

from netdoctor.findings import Report
from netdoctor.history import History
from netdoctor.integrations._findings import FindingSink

if TYPE_CHECKING:
    from netdoctor.config import Config

logger = logging.getLogger("netdoctor.monitor")


class NetdoctorCallback(TrainerCallback):
    """Hugging Face ``TrainerCallback`` running netdoctor's training monitor.

    ``select`` to ``print_report`` are passed to the
    :class:`~netdoctor.adapters.torch.monitor.TorchMonitor` (as by ``netdoctor.watch``).

    Args:
        every: Sampling period in optimizer steps.
        on_error: ``"warn"``, ``"stop"`` or ``"raise"`` when a finding at ``fail_on`` fires.
        fail_on: Severity that triggers ``on_error``.
        log_to: JSONL log, a TensorBoard ``SummaryWriter`` or a ``wandb`` run (rank zero).
        select: Rule codes/prefixes/names the monitor runs.
        ignore: Rule codes/prefixes/names it does not run.
        config: A full :class:`~netdoctor.config.Config` (rule options and severities).
        activations: Measure dead/saturated fractions of activation modules.
        update_ratio: Measure update-to-weight ratios.
        saturation_preact: Pre-activation magnitude beyond which a sigmoid/tanh unit is saturated.
        max_samples: Samples kept in memory.
        grad_scaler: A ``torch.amp.GradScaler`` whose scale is still in the gradients.
        step_grad_norm: Measure the total gradient norm of every step.
        print_report: Print the text report to stderr when training ends.
    """

    def __init__(self, every: int = 50, on_error: str = "warn", *, fail_on: str = "error", log_to: Any = None,
                 select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
                 config: Config | None = None, activations: bool = True, update_ratio: bool = True,
                 saturation_preact: float = 5.0, max_samples: int = 256, grad_scaler: Any = None,
                 step_grad_norm: bool = True, print_report: bool = False) -> None:
        from netdoctor.monitor.core import ON_ERROR

        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, not {on_error!r}")
        self.every, self.on_error, self.fail_on, self.log_to = every, on_error, fail_on, log_to
        self.watch_kwargs: dict[str, Any] = dict(
            select=select, ignore=ignore, config=config, activations=activations, update_ratio=update_ratio,
            saturation_preact=saturation_preact, max_samples=max_samples, grad_scaler=grad_scaler,
            step_grad_norm=step_grad_norm, print_report=print_report)
        self.monitor: Any = None
        self._sink: FindingSink | None = None
        self._hook: Any = None
        self._loss: Any = None
        self._warned = False  # the model's output had no loss
        self._warned_clip = False  # the norm before clipping is out of reach
        self._trainer: Any = None  # the Trainer whose _get_grad_norm is wrapped during train()
        self._pre_norm: Any = None  # the step's gradient norm before clipping

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       lr_scheduler: Any = None, **kwargs: Any) -> None:
        from netdoctor.adapters.torch.monitor import TorchMonitor

        self.monitor = TorchMonitor(model, optimizer, every=self.every, on_error="warn", fail_on=self.fail_on,
                                    scheduler=lr_scheduler, live=False, log_to=self.log_to, **self.watch_kwargs)
        self._sink = FindingSink(self.monitor.core, self.on_error, self.fail_on)
        self._hook = model.register_forward_hook(self._take_loss)
        self._wrap_grad_norm(args)

    def _wrap_grad_norm(self, args: Any) -> None:
        """Wrap the running Trainer's ``_get_grad_norm`` to read each step's pre-clipping norm."""
        import sys

        from transformers import Trainer

        frame, trainer = sys._getframe(1), None
        for _ in range(8):  # Trainer._inner_training_loop -> CallbackHandler -> call_event -> here
            if frame is None:
                break
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, Trainer):
                trainer = candidate
                break
            frame = frame.f_back
        original = getattr(trainer, "_get_grad_norm", None)
        if trainer is None or not callable(original) or "_get_grad_norm" in vars(trainer):
            if getattr(args, "max_grad_norm", 0) and not self._warned_clip:
                self._warned_clip = True
                logger.warning("netdoctor: the Trainer clips gradients at max_grad_norm=%s and its norm before "
                               "clipping is not reachable in this transformers version; the monitor sees the "
                               "clipped gradients (set max_grad_norm=0 to see spikes)", args.max_grad_norm)
            return

        def get_grad_norm(*a: Any, **k: Any) -> Any:
            value = original(*a, **k)
            self._pre_norm = value
            return value

        trainer._get_grad_norm = get_grad_norm  # an instance attribute: the class is untouched
        self._trainer = trainer

    def _unwrap_grad_norm(self) -> None:
        if self._trainer is not None:
            vars(self._trainer).pop("_get_grad_norm", None)
            self._trainer = None

    def _take_loss(self, module: Any, inputs: Any, output: Any) -> None:
        import torch

        if module.training and torch.is_grad_enabled():
            loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
            self._loss = loss.detach() if isinstance(loss, torch.Tensor) else None

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is None:
            return
        loss = self._loss
        if loss is None:  # nothing to record: the loss rules would judge NaN, and the step is unknown
            if not self._warned:
                self._warned = True
                logger.warning("netdoctor: the model's output has no `loss`, so the monitor is off; return the "
                               "loss from the model's forward, or call netdoctor.watch in your own loop")
            return
        self.monitor.step(loss, grad_norm=self._pre_norm)
        self._loss = self._pre_norm = None
        if self._sink.react(None, state.global_step):
            control.should_training_stop = True

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        """Record the evaluation loss (``eval_loss``) of an evaluation during training."""
        value = (metrics or {}).get("eval_loss")
        if self.monitor is not None and not self.monitor.core.closed and value is not None:
            self.monitor.validation(value)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._unwrap_grad_norm()
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.monitor is not None and not self.monitor.core.closed:
            self.monitor.close()
            self._sink.react(None, state.global_step, final=True)

    def report(self) -> Report:
        """The monitor's report of the run."""
        return self.monitor.report()

    def history(self) -> History:
        return self.monitor.history()
