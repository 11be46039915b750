"""What every part of a Keras fix reads: the user's model, its probe data and loss, the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netdoctor.snapshot import ProbeSettings


@dataclass(frozen=True)
class FixContext:
    """The model a fixer works for (only ever read) and the probe it trains.

    Built once per :class:`~netdoctor.adapters.keras.fix.Fixer` and passed to the edits
    (:func:`~netdoctor.adapters.keras.fix.edits.apply`), the training probe and the diff.
    ``compiled_loss`` and ``optimizer`` are the model's own when it was compiled, else ``None``.
    """

    model: Any
    inputs: Any
    targets: Any
    loss_fn: Any
    settings: ProbeSettings
    input_shape: Any
    seed: int
    compiled_loss: Any
    optimizer: Any

    @classmethod
    def of(cls, model: Any, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
           input_shape: Any) -> FixContext:
        """The context of ``model`` with its probe data, loss and settings."""
        compiled = getattr(model, "_compile_loss", None) is not None
        return cls(model, inputs, targets, loss_fn, settings, input_shape, int(settings.seed),
                   getattr(model, "loss", None) if compiled else None,
                   getattr(model, "optimizer", None) if compiled else None)
