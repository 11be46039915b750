"""Apply netdoctor's recommended fixes to a deep copy of a torch model, and run training probes.

Used by :mod:`netdoctor.verify`, which decides which :class:`~netdoctor.verify.protocol.FixStep`
answers a finding. Every edit happens on ``copy.deepcopy(model)`` (or on copies of the probe
batch / the loss); the user's model is only read. :meth:`Fixer.guard` restores the global RNGs
(torch CPU and CUDA, numpy, Python ``random``) after the verification; every random draw inside
it (re-initialization, dropout masks, minibatch order) is seeded from ``ProbeSettings.seed``.

Structural edits: a layer is wrapped as ``nn.Sequential(layer, nn.BatchNorm1d(n))`` (its name
``fc1`` becomes ``fc1.0`` in the copy; ``Applied.rename`` records it), removed layers become
``nn.Identity()``.

:class:`Fixer` holds a :class:`~netdoctor.adapters.torch.fix.context.FixContext` and hands it to
the edits (:mod:`~netdoctor.adapters.torch.fix.edits`), the training probe
(:mod:`~netdoctor.adapters.torch.fix.probe`) and the diff snippet
(:mod:`~netdoctor.adapters.torch.fix.diff`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from netdoctor.adapters._common import Applied, host_rngs_restored
from netdoctor.adapters.torch.fix import diff, edits, probe
from netdoctor.adapters.torch.fix.context import FixContext
from netdoctor.adapters.torch.state import cuda_devices
from netdoctor.snapshot import ModelSnapshot, ProbeSettings
from netdoctor.verify.protocol import FixStep, ProbeResult


class Fixer:
    """Fixes and probes for one torch model (see the module docstring)."""

    def __init__(self, model: nn.Module, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
                 input_shape: Any) -> None:
        self.context = FixContext.of(model, inputs=inputs, targets=targets, loss_fn=loss_fn, settings=settings,
                                     input_shape=input_shape)

    def apply(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> Applied:
        """Apply ``steps`` to a deep copy of the model (and copies of the data/loss)."""
        return edits.apply(self.context, steps)

    def probe(self, applied: Applied | None, steps: int, mode: str = "full", minibatch: int = 16,
              stop_below: float | None = None) -> ProbeResult:
        """``steps`` Adam(1e-3) steps on the probe batch (seeded); ``applied=None`` probes the original."""
        return probe.probe(self.context, applied, steps, mode, minibatch, stop_below)

    def score(self, base: ProbeResult, fixed: ProbeResult, applied: Applied) -> tuple[float, float]:
        """Final probe losses (original, fixed) in the same terms: the fixed loss when the fix changed it."""
        return probe.score(self.context, base, fixed, applied)

    def diff(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> str:
        """A diff-like snippet of the fix in the user's own layer names (``-`` old, ``+`` new lines)."""
        return diff.diff(self.context, steps)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Restore the torch (CPU and CUDA), numpy and Python RNG states afterwards."""
        with host_rngs_restored(), torch.random.fork_rng(devices=cuda_devices(self.context.model), enabled=True):
            yield
