"""What every part of a torch fix reads: the user's model, its probe data and loss, the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netdoctor.adapters.torch.io import model_device_dtype
from netdoctor.snapshot import ProbeSettings


@dataclass(frozen=True)
class FixContext:
    """The model a fixer works for (only ever read) and the probe it trains.

    Built once per :class:`~netdoctor.adapters.torch.fix.Fixer` and passed to the edits
    (:func:`~netdoctor.adapters.torch.fix.edits.apply`), the training probe and the diff.
    """

    model: nn.Module
    inputs: Any
    targets: Any
    loss_fn: Any
    settings: ProbeSettings
    input_shape: Any
    seed: int
    device: torch.device
    dtype: torch.dtype
    sequential_root: bool  # layers are written ``model[0]`` (nn.Sequential) rather than ``self.fc1``

    @classmethod
    def of(cls, model: nn.Module, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
           input_shape: Any) -> FixContext:
        """The context of ``model`` with its probe data, loss and settings."""
        device, dtype = model_device_dtype(model)
        return cls(model, inputs, targets, loss_fn, settings, input_shape, int(settings.seed), device, dtype,
                   isinstance(model, (nn.Sequential, nn.ModuleList)))
