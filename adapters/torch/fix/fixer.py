"""Apply netdoctor's recommended fixes to a deep copy of a torch model, and run training probes.

Used by :mod:`netdoctor.verify`, which decides which :class:`~netdoctor.verify.FixStep` answers a
finding. Every edit happens on ``copy.deepcopy(model)`` (or on copies of the probe batch / the
loss); the user's model is only read. :meth:`Fixer.guard` restores the global RNGs (torch CPU
and CUDA, numpy, Python ``random``) after the verification; every random draw inside it
(re-initialization, dropout masks, minibatch order) is seeded from ``ProbeSettings.seed``.

Structural edits: a layer is wrapped as ``nn.Sequential(layer, nn.BatchNorm1d(n))`` (its name
``fc1`` becomes ``fc1.0`` in the copy; ``Applied.rename`` records it), removed layers become
``nn.Identity()``.

:class:`Fixer` joins three parts: the edits (``_torch_fix_edits``: ``apply``), the training
probe (``_torch_fix_probe``: ``probe``, ``score``) and the diff snippet (``_torch_fix_diff``:
``diff``); this module adds the RNG guard.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from netdoctor.adapters.torch.fix.diff import INIT_CALLS, DiffMixin
from netdoctor.adapters.torch.fix.edits import (
    Applied,
    EditMixin,
    ProbabilityCrossEntropy,
)
from netdoctor.adapters.torch.fix.probe import ProbeMixin
from netdoctor.verify.protocol import ProbeResult
from netdoctor.adapters.torch.io import model_device_dtype
from netdoctor.adapters.torch.state import cuda_devices
from torch import nn

from netdoctor.snapshot import ProbeSettings

__all__ = ["INIT_CALLS", "Applied", "Fixer", "ProbabilityCrossEntropy", "ProbeResult"]


class Fixer(EditMixin, ProbeMixin, DiffMixin):
    """Fixes and probes for one torch model (see the module docstring)."""

    def __init__(self, model: nn.Module, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
                 input_shape: Any) -> None:
        self.model, self.inputs, self.targets, self.loss_fn = model, inputs, targets, loss_fn
        self.settings, self.input_shape = settings, input_shape
        self.seed = int(settings.seed)
        self.device, self.dtype = model_device_dtype(model)
        self.sequential_root = isinstance(model, (nn.Sequential, nn.ModuleList))

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Restore the torch (CPU and CUDA), numpy and Python RNG states afterwards."""
        py, npy = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=cuda_devices(self.model), enabled=True):
                yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)
