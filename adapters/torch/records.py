"""What the probe forward records: layer records, call frames, and the statistics taken on them.

A :class:`Rec` is a layer record under construction (frozen into a ``LayerRecord`` later);
a :class:`Frame` is one module call on the probe's stack. :class:`RecordStats` takes a
record's input/output statistics (on its first call only) with ``reduce``, behind a cache
keyed by tensor identity and version, since a layer's output is usually the next layer's
input. How records are named and when they are made is ``trace``.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from netdoctor.adapters._common import saturation_threshold
from netdoctor.adapters.torch.stats import HOST_LIMIT, reduce
from netdoctor.snapshot import (
    KIND_ACTIVATION, KIND_CONV, KIND_EMBEDDING, KIND_PREPROCESS, NORM_KINDS, RELU_FAMILY, WEIGHT_KINDS,
    ProbeSettings, TensorStats,
)

MAX_RECORDS_PER_SITE = 32  # a parameter-free module / functional call site repeated in a loop


@dataclass(eq=False)
class Rec:
    """A layer record under construction (mutable; frozen into a ``LayerRecord`` later)."""

    name: str
    module: nn.Module | None
    type_name: str
    kind: str
    activation: str | None = None
    order: int = -1
    calls: int = 0
    inputs_from: dict[str, None] = field(default_factory=dict)
    consumes_input: bool = False
    consumes_float_input: bool = False
    input: TensorStats | None = None
    output: TensorStats | None = None
    unit_active: np.ndarray | None = None
    unit_saturated: np.ndarray | None = None
    channels_first: bool = False
    executed: bool = True
    attrs: dict[str, Any] = field(default_factory=dict)
    tensors: list[tuple[str, torch.Tensor, bool]] | None = None  # (name, tensor, is_buffer) if not the module's own


@dataclass(eq=False)
class Frame:
    """One module call on the stack."""

    name: str
    rec: Rec | None
    opaque: bool
    module: nn.Module | None = None
    depth: int = 0
    first_shape: tuple[int, ...] | None = None
    first_dtype: torch.dtype | None = None
    counters: dict[str, int] = field(default_factory=dict)


class RecordStats:
    """Input and output statistics of records, with ``reduce`` behind a cache.

    Attributes:
        settings: The probe settings (``max_units``, ``saturation_preact``).
        activations: Whether activation statistics are wanted at all.
    """

    def __init__(self, settings: ProbeSettings, activations: bool, sparsity: bool = True) -> None:
        self.settings = settings
        self.activations = activations
        self.sparsity = sparsity  # abs_mean and frac_zero of large tensors (Need.SPARSITY; see reduce)
        self._cache: dict[int, tuple[Any, int, int | None, TensorStats]] = {}

    def _cached(self, t: torch.Tensor, axis: int | None) -> TensorStats | None:
        entry = self._cache.get(id(t))
        if entry is None or entry[0]() is not t or entry[1] != t._version:
            return None
        if axis is not None and (entry[2] != axis % max(t.dim(), 1) or entry[3].unit_mean is None):
            return None
        return entry[3]

    def _remember(self, t: torch.Tensor, axis: int | None, stats: TensorStats) -> None:
        norm_axis = axis % max(t.dim(), 1) if axis is not None else None
        self._cache[id(t)] = (weakref.ref(t), t._version, norm_axis, stats)

    def of(self, t: torch.Tensor, axis: int | None) -> TensorStats:
        """Statistics of ``t`` (per unit along ``axis`` unless ``None``), shared with the records.

        The data statistics of a model input and the output's statistics come from here, so
        the first layer's input and the last layer's output are not reduced a second time.
        """
        return self._stats(t, axis)[0]

    def _stats(self, t: torch.Tensor, axis: int | None, unit_axis: int | None = None,
               **flags: Any) -> tuple[TensorStats, Any, Any]:
        """``reduce`` with a cache: a layer's output is usually the next layer's input.

        ``axis`` asks for the per-unit moments (``unit_mean`` ...) along it; the ``flags``
        (``active``, ``saturation``) for per-unit fractions along ``unit_axis`` (default ``axis``).
        """
        if not flags:
            hit = self._cached(t, axis)
            if hit is not None:
                return hit, None, None
        along = axis if axis is not None else unit_axis
        got = reduce(t, unit_axis=along, max_units=self.settings.max_units, unit_moments=axis is not None,
                     sparsity=self.sparsity, **flags)
        self._remember(t, along, got[0])
        return got

    def input_stats(self, rec: Rec, first: torch.Tensor, depth: int) -> None:
        """``rec.input`` of a weight, normalization, preprocessing or activation layer (else nothing).

        Per-feature vectors are taken only where ND101 reads them: the input of a weight layer
        that no weight layer precedes (``depth`` 0), which may be an entry layer. Activations get
        whole-tensor statistics: ND401 and ND304 need to know whether a ReLU that never fired
        was fed all zeros (zero weights upstream).
        """
        kind = rec.kind
        if kind in WEIGHT_KINDS:
            if kind == KIND_EMBEDDING or not first.is_floating_point() or depth > 0:
                rec.input = self._stats(first, None)[0]
            else:
                rec.input = self._stats(first, 1 if kind == KIND_CONV and first.dim() >= 2 else -1)[0]
        elif kind in NORM_KINDS or kind in (KIND_PREPROCESS, KIND_ACTIVATION):
            rec.input = self._stats(first, None)[0]

    def _unit_axis(self, rec: Rec, t: torch.Tensor) -> int:
        if t.dim() >= 4:
            return 1
        if t.dim() == 3 and rec.channels_first:
            return 1
        return -1

    def output_stats(self, rec: Rec, out: torch.Tensor) -> None:
        """``rec.output`` (with per-unit active/saturated fractions of an activation), if activations are wanted.

        Whole-tensor statistics otherwise: no rule reads the per-unit moments of a hidden
        output, and they cost as much as the rest of its statistics together.
        """
        if not self.activations:
            return
        axis = self._unit_axis(rec, out) if out.is_floating_point() and out.dim() >= 2 else None
        act = rec.activation if rec.kind == KIND_ACTIVATION else None
        flags: dict[str, Any] = {}
        if act is not None and axis is not None:
            if act in RELU_FAMILY:
                flags["active"] = True
                if _clamps_at_zero(rec):
                    flags["nonneg"] = True
                    top = _relu_max(rec, out)
                    if top is not None:
                        flags["known_max"] = top
            bounds = saturation_threshold(act, self.settings.saturation_preact)
            if bounds is not None:
                flags["saturation"] = bounds
        # a small output (the model's head, most often) gets its per-unit moments too: numpy takes
        # them for a few microseconds, and the output's own statistics then come from this cache
        moments = axis if axis is not None and out.numel() <= HOST_LIMIT else None
        rec.output, active, saturated = self._stats(out, moments, unit_axis=axis, **flags)
        if "active" in flags:
            rec.unit_active = active
        if "saturation" in flags:
            rec.unit_saturated = saturated


def _relu_max(rec: Rec, out: torch.Tensor) -> float | None:
    """The maximum of a ReLU's (ReLU6's) output from its input's statistics, measured on this call:
    ``max(input max, 0)`` (at most 6), exactly; ``None`` without finite input statistics of its shape."""
    st = rec.input
    if st is None or st.frac_nonfinite != 0.0 or tuple(st.shape) != tuple(out.shape) or not math.isfinite(st.max):
        return None
    top = max(st.max, 0.0)
    return min(top, 6.0) if rec.activation == "relu6" else top


def _clamps_at_zero(rec: Rec) -> bool:
    """The record's output has no negative entries by construction: ``F.relu``/``F.relu6`` (and their
    aliases), or a plain ``nn.ReLU``/``nn.ReLU6`` whose output no other forward hook can replace."""
    module = rec.module
    if module is None:
        return rec.activation in ("relu", "relu6")
    return (type(module) in (nn.ReLU, nn.ReLU6) and len(module._forward_hooks) <= 1
            and not nn.modules.module._global_forward_hooks)
