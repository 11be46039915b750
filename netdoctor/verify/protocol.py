"""The contract between verification and the framework fixers.

:mod:`netdoctor.verify` decides *what* to change (a tuple of :class:`FixStep` edits); a fixer
(``netdoctor.adapters.torch.fix``, ``netdoctor.adapters.keras.fix``) applies the edits to a copy
of the model, raises :class:`NotApplicable` when an edit does not fit the model, trains the
training probe and returns a :class:`ProbeResult`, and writes per-edit code blocks that
:func:`join_blocks` joins into the verification's ``diff``. Framework-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FixStep:
    """One framework-neutral edit: ``op`` on ``layer`` with hashable ``args``."""

    op: str
    layer: str | None = None
    args: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.args).get(key, default)


def step(op: str, layer: str | None = None, **kwargs: Any) -> FixStep:
    """Build a :class:`FixStep` (keyword values must be hashable)."""
    return FixStep(op, layer, tuple(sorted(kwargs.items())))


class NotApplicable(Exception):
    """The fix cannot be applied mechanically to this model (raised by the fixers)."""


@dataclass
class ProbeResult:
    """A training probe of a fixer (torch or Keras): final loss, settings, and the trained copy.

    ``model`` is the trained copy (for re-scoring) and ``applied`` the fixer's ``Applied`` record
    of what the probe fed it; the orchestration in :mod:`netdoctor.verify` reads the rest.
    """

    model: Any
    applied: Any
    final: float
    steps: int
    optimizer: str
    loss_name: str
    clip: float | None = None
    note: str | None = None
    max_spike: float | None = None
    losses: list[float] = field(default_factory=list)


def max_spike(norms: list[float], warmup: int = 5) -> float | None:
    """Largest gradient norm of a probe relative to the median of the steps before it."""
    import numpy as np

    best = None
    for i in range(warmup, len(norms)):
        med = float(np.median(norms[:i]))
        if med > 0 and math.isfinite(norms[i]):
            best = max(best or 0.0, norms[i] / med)
    return best



def join_blocks(blocks: list[tuple[str, list[str]]], limit: int = 4) -> str:
    """Join the fixers' per-step diff blocks: identical blocks once, at most ``limit`` blocks per edit kind."""
    out: list[str] = []
    seen: set[tuple[str, ...]] = set()
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for op, lines in blocks:
        key = tuple(lines)
        if not lines or key in seen:
            continue
        seen.add(key)
        if shown.get(op, 0) >= limit:
            hidden[op] = hidden.get(op, 0) + 1
            continue
        shown[op] = shown.get(op, 0) + 1
        out.extend(lines)
    out += [f"# ... and {n} more layer{'s' if n > 1 else ''} the same way" for n in hidden.values()]
    return "\n".join(out)
