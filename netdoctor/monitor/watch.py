"""``netdoctor.watch``: monitor a PyTorch training loop."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable

from netdoctor.errors import UnsupportedModelError
from netdoctor.frameworks import detect_framework

if TYPE_CHECKING:
    from netdoctor.adapters.torch.monitor import TorchMonitor
    from netdoctor.config import Config


def watch(
    model: Any,
    optimizer: Any = None,
    *,
    every: int = 50,
    log_to: str | os.PathLike[str] | Any | None = None,
    live: bool | str = "auto",
    print_report: bool = False,
    on_error: str = "warn",
    fail_on: str = "error",
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    config: Config | None = None,
    activations: bool = True,
    update_ratio: bool = True,
    saturation_preact: float = 5.0,
    max_samples: int = 256,
    grad_scaler: Any = None,
    scheduler: Any = None,
    step_grad_norm: bool = True,
) -> TorchMonitor:
    """Monitor a PyTorch training loop (``netdoctor.watch``).

    Returns a :class:`netdoctor.adapters.torch.monitor.TorchMonitor`; call ``monitor.step(loss)``
    after each ``optimizer.step()``. Keras models use ``netdoctor.KerasCallback`` instead. The
    keyword arguments are the monitor's (see :class:`~netdoctor.adapters.torch.monitor.TorchMonitor`).

    Raises:
        netdoctor.errors.UnsupportedModelError: ``model`` is not a ``torch.nn.Module``.
    """
    if detect_framework(model) == "keras":
        raise UnsupportedModelError(
            "netdoctor.watch() is for PyTorch loops; for Keras use "
            "model.fit(..., callbacks=[netdoctor.KerasCallback()])"
        )
    from netdoctor.adapters.torch.monitor import TorchMonitor

    return TorchMonitor(model, optimizer, every=every, log_to=log_to, live=live, print_report=print_report,
                        on_error=on_error, fail_on=fail_on, select=select, ignore=ignore, config=config,
                        activations=activations, update_ratio=update_ratio, saturation_preact=saturation_preact,
                        max_samples=max_samples, grad_scaler=grad_scaler, scheduler=scheduler,
                        step_grad_norm=step_grad_norm)
