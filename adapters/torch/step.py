"""The model's own training step as the probe: a batch in, the loss it computes out.

A :class:`~netdoctor.integrations.lightning_module.TrainingStep` replaces ``model(x)`` followed by a
loss: the adapter calls it inside its probe, so the forward pass the step makes is measured
layer by layer, and the loss tensor it returns is the one differentiated. :class:`LossWatch`
(a ``TorchFunctionMode`` beside the probe's) notes which loss function the step called and on
which tensor, so the report can name the loss (``training_step() -> cross_entropy``) and
ND503 can pair the output that went into it with what that loss expects.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from netdoctor.adapters.torch.flow import iter_tensors

#: ``torch.nn.functional`` losses whose first argument is the model output.
LOSS_FUNCTIONS = {getattr(F, n): n for n in (
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
    "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss", "gaussian_nll_loss",
    "multilabel_soft_margin_loss", "multi_margin_loss", "hinge_embedding_loss", "soft_margin_loss",
    "cosine_embedding_loss", "margin_ranking_loss", "triplet_margin_loss", "ctc_loss",
) if hasattr(F, n)}

#: Keys of a dict batch that hold targets rather than inputs.
TARGET_KEYS = ("labels", "label", "y", "target", "targets")


class LossWatch(TorchFunctionMode):
    """Notes the loss functions called while it is active: ``calls`` is ``[(name, input tensor)]``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, torch.Tensor]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: D105
        out = func(*args, **(kwargs or {}))
        name = LOSS_FUNCTIONS.get(func)
        if name is not None and args and isinstance(args[0], torch.Tensor):
            self.calls.append((name, args[0]))
        return out

    def loss(self) -> tuple[str | None, torch.Tensor | None]:
        """The last loss called on a tensor that carries a gradient (the training loss), else the last one."""
        for name, t in reversed(self.calls):
            if t.requires_grad:
                return name, t
        return (self.calls[-1][0], self.calls[-1][1]) if self.calls else (None, None)


def to_device(batch: Any, device: torch.device, dtype: torch.dtype, n: int) -> Any:
    """The batch with the same structure: tensors/arrays on ``device`` (floats in ``dtype``), first ``n`` rows."""
    if isinstance(batch, torch.Tensor) or isinstance(batch, np.ndarray):
        t = batch.detach() if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
        if t.dim() >= 1 and t.shape[0] > n:
            t = t[:n]
        return t.to(device=device, dtype=dtype if t.is_floating_point() else None, copy=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device, dtype, n) for k, v in batch.items()}) \
            if type(batch) is dict else {k: to_device(v, device, dtype, n) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(v, device, dtype, n) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device, dtype, n) for v in batch)
    return batch


def split_batch(batch: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """``(named input tensors, targets)`` of a batch, for the data statistics.

    ``(x, y)`` -> x and y; a dict -> its tensors, the :data:`TARGET_KEYS` as targets; else all inputs.
    """
    def named(x: Any, base: str) -> dict[str, torch.Tensor]:
        if isinstance(x, torch.Tensor):
            return {base: x}
        if isinstance(x, Mapping):
            return {str(k): v for k, v in x.items() if isinstance(v, torch.Tensor)}
        return {f"{base}[{i}]": t for i, t in enumerate(iter_tensors(x))}

    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return named(batch[0], "x"), batch[1]
    if isinstance(batch, Mapping):
        key = next((k for k in TARGET_KEYS if k in batch), None)
        inputs = {str(k): v for k, v in batch.items() if k != key and isinstance(v, torch.Tensor)}
        return inputs, (batch[key] if key is not None else None)
    return named(batch, "x"), None
