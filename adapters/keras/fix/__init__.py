"""Apply netdoctor's recommended fixes to a clone of a Keras 3 model, and run training probes.

Used by :mod:`netdoctor.verify`. The user's model is only read: Sequential models are rebuilt
from their layers' configs, Functional models cloned with ``keras.models.clone_model`` (a
``clone_function`` replaces layers, a ``call_function`` inserts new ones after a layer), and
the weights are copied over by layer name. The probe trains the clone with the model's
compiled optimizer (a fresh one from its config; Adam 1e-3 when not compiled) through the
adapter's gradient tape and loss resolution. :meth:`Fixer.guard` restores Python's and
numpy's RNGs, Keras' global seed generator and Keras' automatic-name counters afterwards.

:class:`Fixer` holds a :class:`~netdoctor.adapters.keras.fix.context.FixContext` and hands it to
the edits (:mod:`~netdoctor.adapters.keras.fix.edits`), the training probe
(:mod:`~netdoctor.adapters.keras.fix.probe`) and the diff snippet
(:mod:`~netdoctor.adapters.keras.fix.diff`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from netdoctor.adapters._common import Applied, host_rngs_restored
from netdoctor.adapters.keras.fix import diff, edits, probe
from netdoctor.adapters.keras.fix.context import FixContext
from netdoctor.adapters.keras.state import globals_restored
from netdoctor.snapshot import ModelSnapshot, ProbeSettings
from netdoctor.verify.protocol import FixStep, ProbeResult


class Fixer:
    """Fixes and probes for one Keras model (see the module docstring)."""

    def __init__(self, model: Any, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
                 input_shape: Any) -> None:
        self.context = FixContext.of(model, inputs=inputs, targets=targets, loss_fn=loss_fn, settings=settings,
                                     input_shape=input_shape)

    def apply(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> Applied:
        """Apply ``steps`` to a clone of the model (and copies of the data/loss)."""
        return edits.apply(self.context, steps)

    def probe(self, applied: Applied | None, steps: int, mode: str = "full", minibatch: int = 16,
              stop_below: float | None = None) -> ProbeResult:
        """``steps`` optimizer steps on the probe batch (seeded); ``applied=None`` probes the original."""
        return probe.probe(self.context, applied, steps, mode, minibatch, stop_below)

    def score(self, base: ProbeResult, fixed: ProbeResult, applied: Applied) -> tuple[float, float]:
        """Final probe losses (original, fixed), both under the fixed loss when the fix changed it."""
        return probe.score(self.context, base, fixed, applied)

    def diff(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> str:
        """A diff-like snippet of the fix in the user's own layer names (``-`` old, ``+`` new lines)."""
        return diff.diff(self.context, steps)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Restore Python's and numpy's RNGs, Keras' global seed generator and name counters afterwards."""
        with host_rngs_restored(), globals_restored():
            yield
