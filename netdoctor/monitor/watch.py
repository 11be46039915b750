"""``netdoctor.watch``: monitor a PyTorch training loop."""

from __future__ import annotations

from typing import Any

from netdoctor.errors import UnsupportedModelError
from netdoctor.frameworks import detect_framework


def watch(model: Any, optimizer: Any = None, **kwargs: Any) -> Any:
    """Monitor a PyTorch training loop (``netdoctor.watch``).

    Returns a :class:`netdoctor.adapters.torch.monitor.TorchMonitor`; call ``monitor.step(loss)``
    after each ``optimizer.step()``. Keras models use ``netdoctor.KerasCallback`` instead.

    Raises:
        netdoctor.errors.UnsupportedModelError: ``model`` is not a ``torch.nn.Module``.
    """
    if detect_framework(model) == "keras":
        raise UnsupportedModelError(
            "netdoctor.watch() is for PyTorch loops; for Keras use "
            "model.fit(..., callbacks=[netdoctor.KerasCallback()])"
        )
    from netdoctor.adapters.torch.monitor import TorchMonitor

    return TorchMonitor(model, optimizer, **kwargs)
