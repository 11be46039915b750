"""``NetdoctorCallback`` for Lightning: pre-flight check + the training monitor during ``fit``.

Usage::

    from netdoctor.integrations.lightning import NetdoctorCallback
    trainer = lightning.Trainer(callbacks=[NetdoctorCallback(every=50)])
    trainer.fit(module, datamodule)

What happens, and where:

* **Pre-flight** (``preflight=True``): at the first training batch, :func:`netdoctor.check` runs
  on that batch with the module's own ``training_step`` as the loss (the module and the batch
  are left as they were; ``self.log`` calls inside are dropped). Its findings are logged like
  the monitor's and kept in :attr:`NetdoctorCallback.preflight_report`.
* **Monitor**: a :class:`netdoctor.adapters.torch.monitor.TorchMonitor` on the LightningModule.
  The step's loss is taken in ``on_before_backward`` (the loss Lightning is about to
  backpropagate) and the monitor steps in ``on_after_backward``: the gradients are complete and
  not yet zeroed or stepped. The update-to-weight ratio measured on a sampled step is therefore
  that of the previous optimizer step (one real update either way). With
  ``accumulate_grad_batches=k`` a monitor step is one micro-batch.
* **Findings**: logged on the ``"netdoctor.monitor"`` logger on rank zero only, and written to the
  trainer's loggers as metrics ``netdoctor/<code>`` (1 at the step where they fired).
* ``on_error``: ``"warn"`` logs; ``"stop"`` sets ``trainer.should_stop`` (Lightning ends the fit
  cleanly); ``"raise"`` raises :class:`netdoctor.monitor.TrainingError` out of ``fit``.

Under DDP every rank runs the monitor (the per-step statistics are all-reduced, one collective
per sampled step); only rank zero logs, prints and writes ``log_to``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - the standalone package
    import pytorch_lightning as pl  # type: ignore[no-redef]

from netdoctor.findings import Report
from netdoctor.history import History
from netdoctor.integrations._findings import FindingSink

if TYPE_CHECKING:
    from netdoctor.config import Config


class NetdoctorCallback(pl.Callback):
    """Lightning callback running netdoctor's pre-flight check and training monitor.

    ``select`` to ``print_report`` are passed to the
    :class:`~netdoctor.adapters.torch.monitor.TorchMonitor` (as by ``netdoctor.watch``).

    Args:
        every: Sampling period in steps (see ``netdoctor.watch``).
        on_error: ``"warn"``, ``"stop"`` or ``"raise"`` when a finding at ``fail_on`` fires.
        fail_on: Severity that triggers ``on_error``.
        preflight: Run ``netdoctor.check`` on the first training batch.
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

    def __init__(self, every: int = 50, on_error: str = "warn", *, fail_on: str = "error", preflight: bool = True,
                 log_to: Any = None, select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
                 config: Config | None = None, activations: bool = True, update_ratio: bool = True,
                 saturation_preact: float = 5.0, max_samples: int = 256, grad_scaler: Any = None,
                 step_grad_norm: bool = True, print_report: bool = False) -> None:
        super().__init__()
        from netdoctor.monitor.core import ON_ERROR

        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, not {on_error!r}")
        self.every, self.on_error, self.fail_on = every, on_error, fail_on
        self.preflight = preflight
        self.log_to = log_to
        self.watch_kwargs: dict[str, Any] = dict(
            select=select, ignore=ignore, config=config, activations=activations, update_ratio=update_ratio,
            saturation_preact=saturation_preact, max_samples=max_samples, grad_scaler=grad_scaler,
            step_grad_norm=step_grad_norm, print_report=print_report)
        self.monitor: Any = None
        self.preflight_report: Report | None = None
        self._loss: Any = None
        self._preflown = False
        self._sink: FindingSink | None = None

    # -- Lightning hooks -----------------------------------------------------------
    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        from netdoctor.adapters.torch.monitor import TorchMonitor

        opt = trainer.optimizers[0] if trainer.optimizers else None
        configs = getattr(trainer, "lr_scheduler_configs", None) or []
        sched = configs[0].scheduler if configs else None
        self.monitor = TorchMonitor(pl_module, opt, every=self.every, on_error="warn", fail_on=self.fail_on,
                                    scheduler=sched, live=False, log_to=self.log_to, **self.watch_kwargs)
        self._sink = FindingSink(self.monitor.core, self.on_error, self.fail_on)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.preflight and not self._preflown:
            self._preflown = True
            self.preflight_report = _preflight(pl_module, batch, batch_idx)
            if self.preflight_report is not None:
                self._sink.announce(self.preflight_report.findings, trainer, label="pre-flight")

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        self._loss = loss

    def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is None or self._loss is None:
            return
        self.monitor.step(self._loss)
        self._loss = None
        if self._sink.react(trainer, trainer.global_step):
            trainer.should_stop = True

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Record the ``val_loss`` the module logged (``self.log("val_loss", ...)``), if any."""
        if self.monitor is None or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        value = next((metrics[k] for k in VAL_KEYS if k in metrics), None)
        if value is not None:
            self.monitor.validation(value)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.monitor is not None:
            self.monitor.close()

    # -- public API ----------------------------------------------------------------
    def report(self) -> Report:
        """The monitor's report of the run (pre-flight findings are in :attr:`preflight_report`)."""
        return self.monitor.report()

    def history(self) -> History:
        return self.monitor.history()

    def _close(self, trainer: Any) -> None:
        if self.monitor is not None and not self.monitor.core.closed:
            self.monitor.close()
            self._sink.react(trainer, trainer.global_step, final=True)


#: Names under which a LightningModule logs its validation loss, tried in this order.
VAL_KEYS = ("val_loss", "val/loss", "validation_loss", "valid_loss", "val_loss_epoch")


def _preflight(module: Any, batch: Any, batch_idx: int) -> Report | None:
    """``netdoctor.check`` on the first batch, with the module's own ``training_step`` as the loss.

    ``netdoctor.check`` runs a LightningModule through :class:`~netdoctor.integrations.lightning_module.TrainingStep`
    (logging silenced, the trainer put back afterwards), as ``netdoctor check`` does for a file.
    """
    from netdoctor.api import check

    return check(module, batch)
