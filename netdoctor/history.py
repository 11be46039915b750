"""Training history: the bounded record the monitor keeps and the ND6xx rules read.

Two kinds of data, both framework-neutral:

* **The loss of every step.** Cheap to record (adapters hand over a block of per-step
  losses on each sampled step). The most recent ``recent`` steps (up to twice as many) are
  kept at full resolution; older steps are folded into at most ``archive`` buckets whose
  width doubles whenever the archive fills (mean of the finite losses per bucket). The first
  non-finite step is tracked exactly.
* **Samples**, one per sampled step (every ``every`` steps): total gradient norm,
  per-layer gradient norm, weight norm and update-to-weight ratio, per-activation-layer
  dead and saturated fractions, the learning rate. At most ``max_samples`` are kept: when
  full, every second sample of the older half is dropped (the first sample, the baseline,
  is always kept).

All of it lives in arrays allocated once, so memory is flat however long the run is
(:attr:`HistoryRecorder.nbytes`: about 110 KB for a 3-layer MLP with the defaults).

:class:`HistoryRecorder` is the mutable recorder; :meth:`HistoryRecorder.view` returns a
frozen :class:`History` for the rules (``ModelSnapshot.history``); the rules' own helpers
(windows of the loss curve, "held for ``patience`` samples") are in
:mod:`netdoctor.rules.training.series`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from netdoctor.snapshot import SATURATING

LOG_SCHEMA_VERSION = 1

#: Per-layer arrays of a :class:`Sample` (aligned with ``History.layers`` or ``History.act_layers``).
LAYER_FIELDS = ("layer_grad", "layer_weight", "layer_update")
ACT_FIELDS = ("act_dead", "act_saturated")
_SCALAR_FIELDS = ("grad_norm", "lr")
#: Per optimizer parameter group (width: the header's ``param_groups``).
GROUP_FIELDS = ("lr_groups",)

#: Activations measured for dead units: ReLU-family members whose negative regime has (near)
#: zero gradient, so a unit stuck there stops learning (leaky/ELU/PReLU units cannot die).
DYING_ACTIVATIONS = frozenset({"relu", "relu6", "gelu", "silu", "mish", "hardswish"})
#: Activations measured for saturation (the snapshot's ``SATURATING`` family).
SATURATING_ACTIVATIONS = SATURATING
_SAMPLE_FIELDS = _SCALAR_FIELDS + LAYER_FIELDS + ACT_FIELDS + GROUP_FIELDS


@dataclass(frozen=True, slots=True, eq=False)
class Sample:
    """Measurements of one sampled step.

    Attributes:
        step: The step (0-based count of ``monitor.step`` calls / Keras batches).
        grad_norm: L2 norm of the whole gradient (all trainable parameters), or ``None``
            when gradients were not measured.
        layer_grad: Per weight layer gradient L2 norm (``History.layers`` order).
        layer_weight: Per weight layer weight L2 norm.
        layer_update: Per weight layer ``||W_after - W_before|| / ||W_before||`` of this step.
        act_dead: Per activation layer (ReLU family) fraction of units that output zero
            for every sample of the batch (``History.act_layers`` order; NaN elsewhere).
        act_saturated: Per activation layer (sigmoid/tanh) fraction of units saturated
            for more than half of the samples (NaN elsewhere).
        lr: The learning rate that sets the step size: the largest of the parameter groups'
            (the schedule's value at this step for Keras), when known.
        lr_groups: The learning rate of each optimizer parameter group, when there are several
            (``History.param_groups`` of them).
    """

    step: int
    grad_norm: float | None = None
    layer_grad: np.ndarray | None = None
    layer_weight: np.ndarray | None = None
    layer_update: np.ndarray | None = None
    act_dead: np.ndarray | None = None
    act_saturated: np.ndarray | None = None
    lr: float | None = None
    lr_groups: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"step": self.step, "grad_norm": json_num(self.grad_norm), "lr": json_num(self.lr)}
        for name in LAYER_FIELDS + ACT_FIELDS:
            arr = getattr(self, name)
            d[name] = None if arr is None else [json_num(v) for v in arr.tolist()]
        if self.lr_groups is not None:
            d["lr_groups"] = [json_num(v) for v in self.lr_groups.tolist()]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Sample:
        arrays = {
            name: None if d.get(name) is None else np.asarray([float(v) for v in d[name]], dtype=np.float64)
            for name in LAYER_FIELDS + ACT_FIELDS + GROUP_FIELDS
        }
        gn, lr = d.get("grad_norm"), d.get("lr")
        return cls(step=int(d["step"]), grad_norm=None if gn is None else float(gn),
                   lr=None if lr is None else float(lr), **arrays)


@dataclass(frozen=True, slots=True, eq=False)
class History:
    """A frozen view of the training history (what rules read).

    Attributes:
        framework: ``"torch"`` or ``"keras"``.
        every: Sampling period in steps.
        layers: Weight layers measured in each sample.
        layer_kinds: Kind of each weight layer (``"linear"``, ``"conv"``, ``"embedding"``...).
        act_layers: Activation layers measured in each sample.
        act_kinds: Canonical activation of each (``"relu"``, ``"tanh"``, ``"sigmoid"``...).
        loss_steps: First step of each loss point.
        loss_values: Loss per point (mean of the finite losses of the bucket for archived points).
        loss_widths: Steps per point (1 at full resolution).
        samples: Sampled steps, oldest first.
        steps: Steps seen (``last_step + 1`` for a run starting at 0).
        last_step: Last step seen, ``-1`` before the first.
        first_nonfinite_step: First step whose loss was NaN or Inf.
        nonfinite_count: Steps with a non-finite loss.
        last_loss_finite: Whether the loss of the last step was finite.
        grad_source: How gradients were measured (``"backward"``, ``"held-batch"``) or
            ``None`` when they were not.
        notes: Remarks for the report (why something was not measured).
        grad_values: Total gradient norm of every step, aligned with ``loss_values`` (NaN
            where it was not measured, and for archived points).
        act_output: Per activation layer, whether its output is the model's output (ND610
            exempts those, as ND402 does: a converged sigmoid output is saturated by design).
        optimizer: Class name of the optimizer (``"SGD"``, ``"Adam"``), when known.
        scheduler: Class name of the learning-rate schedule (``"OneCycleLR"``,
            ``"CosineDecay"``), when known.
        val_steps: Steps at which a validation loss was recorded (``monitor.validation(loss)``,
            Keras ``val_loss``, Lightning ``val_loss``, Hugging Face ``eval_loss``).
        val_values: The validation losses, aligned with ``val_steps``.
    """

    framework: str = "torch"
    every: int = 1
    layers: tuple[str, ...] = ()
    layer_kinds: tuple[str, ...] = ()
    act_layers: tuple[str, ...] = ()
    act_kinds: tuple[str, ...] = ()
    loss_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    loss_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    loss_widths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    samples: tuple[Sample, ...] = ()
    steps: int = 0
    last_step: int = -1
    first_nonfinite_step: int | None = None
    nonfinite_count: int = 0
    last_loss_finite: bool = True
    grad_source: str | None = None
    notes: tuple[str, ...] = ()
    grad_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    act_output: tuple[bool, ...] = ()
    optimizer: str | None = None
    scheduler: str | None = None
    val_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    val_values: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def finite_loss(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of the loss points with a finite value."""
        ok = np.isfinite(self.loss_values)
        return self.loss_steps[ok], self.loss_values[ok]

    def step_grad_norms(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of the per-step gradient norms that were measured (may be empty)."""
        g = self.grad_values
        if g.size != self.loss_values.size:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        ok = ~np.isnan(g)
        return self.loss_steps[ok], g[ok]

    @property
    def usable_samples(self) -> tuple[Sample, ...]:
        """Samples the rules judge: all of them, except after a non-finite loss the run never
        recovered from (NaN weights make every later measurement meaningless; ND601 reports it)."""
        if self.first_nonfinite_step is None or self.last_loss_finite:
            return self.samples
        return tuple(s for s in self.samples if s.step < self.first_nonfinite_step)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of a scalar sample field (``"grad_norm"``, ``"lr"``); missing -> dropped."""
        pts = [(s.step, getattr(s, name)) for s in self.usable_samples if getattr(s, name) is not None]
        if not pts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        steps, vals = zip(*pts)
        return np.asarray(steps, dtype=np.int64), np.asarray(vals, dtype=np.float64)

    def matrix(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, samples x layers)`` of a per-layer field; samples without it are dropped."""
        rows = [(s.step, getattr(s, name)) for s in self.usable_samples if getattr(s, name) is not None]
        width = len(self.act_layers) if name in ACT_FIELDS else len(self.layers)
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, width))
        steps, vals = zip(*rows)
        return np.asarray(steps, dtype=np.int64), np.vstack(vals).astype(np.float64)


class HistoryRecorder:
    """Mutable recorder behind :class:`History`, with a fixed memory footprint.

    All storage is allocated up front (when :attr:`meta` names the layers): a ring of
    ``2 * recent`` full-resolution loss points, ``archive`` loss buckets and ``max_samples``
    sample rows of per-layer arrays. Recording never allocates persistent memory, so the
    footprint is the same at step 1,000 and at step 10,000,000.

    Args:
        every: Sampling period (stored for the rules and the log).
        recent: Loss points kept at full resolution (at least; up to twice as many).
        archive: Maximum number of buckets for older loss points.
        max_samples: Maximum number of samples kept.
    """

    def __init__(self, every: int = 1, *, recent: int = 2048, archive: int = 512, max_samples: int = 256) -> None:
        self.every = every
        self.recent = recent
        self.max_samples = max(4, max_samples)
        self._rs = np.zeros(2 * recent, dtype=np.int64)     # recent steps (compacted when full)
        self._rv = np.zeros(2 * recent, dtype=np.float64)   # recent values
        self._rg = np.full(2 * recent, np.nan)               # recent per-step gradient norms
        self._n = 0
        self._arch = np.zeros((archive + 1, 4))             # first step, sum of finite, finite count, width
        self._na = 0
        self._width = 1
        self.last_step = -1
        self.first_nonfinite_step: int | None = None
        self.nonfinite_count = 0
        self.last_loss_finite = True
        self.meta = {}
        self._val: list[tuple[int, float]] = []  # (step, validation loss); halved when full
        self._val_max = 2 * archive

    @property
    def meta(self) -> dict[str, Any]:
        """Model description (``layers``, ``act_layers``...); setting it allocates the sample rows."""
        return self._meta

    @meta.setter
    def meta(self, value: dict[str, Any]) -> None:
        self._meta = value
        n, L, A = self.max_samples, len(value.get("layers", ())), len(value.get("act_layers", ()))
        self._ns = 0
        self._step = np.zeros(n, dtype=np.int64)
        groups = value.get("param_groups")
        G = groups if isinstance(groups, int) and not isinstance(groups, bool) and 0 < groups <= 4096 else 1
        width = {**dict.fromkeys(LAYER_FIELDS, L), **dict.fromkeys(ACT_FIELDS, A), **dict.fromkeys(GROUP_FIELDS, G)}
        self._cols = {name: np.full((n, width.get(name, 1)), np.nan) for name in _SAMPLE_FIELDS}
        self._has = np.zeros((n, len(_SAMPLE_FIELDS)), dtype=bool)

    # -- recording -----------------------------------------------------------------
    def add_losses(self, start: int, values: Sequence[float] | np.ndarray,
                   grads: Sequence[float] | np.ndarray | None = None) -> None:
        """Record the losses (and optionally the total gradient norms) of steps ``start, start+1, ...``."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        g = np.full(v.size, np.nan) if grads is None else np.asarray(grads, dtype=np.float64).ravel()
        steps = np.arange(start, start + v.size, dtype=np.int64)
        bad = ~np.isfinite(v)
        if bad.any():
            self.nonfinite_count += int(bad.sum())
            if self.first_nonfinite_step is None:
                self.first_nonfinite_step = int(steps[np.argmax(bad)])
        self.last_loss_finite = bool(np.isfinite(v[-1]))
        self.last_step = max(self.last_step, int(steps[-1]))
        while v.size:
            if self._n == self._rv.size:
                self._evict(self._n - self.recent)
            k = min(self._rv.size - self._n, v.size)
            self._rs[self._n:self._n + k] = steps[:k]
            self._rv[self._n:self._n + k] = v[:k]
            self._rg[self._n:self._n + k] = g[:k]
            self._n += k
            steps, v, g = steps[k:], v[k:], g[k:]

    def _evict(self, k: int) -> None:
        """Fold the ``k`` oldest full-resolution points into the archive buckets."""
        a = self._arch
        for s, x in zip(self._rs[:k].tolist(), self._rv[:k].tolist()):
            if self._na == 0 or a[self._na - 1, 3] >= self._width:
                if self._na == len(a) - 1:
                    self._merge_archive()
                a[self._na] = (s, 0.0, 0.0, 0.0)
                self._na += 1
            b = a[self._na - 1]
            if math.isfinite(x):
                b[1] += x
                b[2] += 1
            b[3] += 1
        self._rs[:self._n - k] = self._rs[k:self._n]
        self._rv[:self._n - k] = self._rv[k:self._n]
        self._rg[:self._n - k] = self._rg[k:self._n]
        self._n -= k

    def _merge_archive(self) -> None:
        """Merge neighbouring buckets pairwise (in place): half as many, twice as wide."""
        a, n = self._arch, self._na
        half = n // 2
        pairs = a[:2 * half].reshape(half, 2, 4)
        merged = np.column_stack([pairs[:, 0, 0], pairs[:, :, 1].sum(1), pairs[:, :, 2].sum(1), pairs[:, :, 3].sum(1)])
        odd = a[2 * half:n].copy()
        a[:half] = merged
        a[half:half + len(odd)] = odd
        self._na = half + len(odd)
        self._width *= 2

    def add_sample(self, sample: Sample) -> None:
        """Record one sampled step (thinning older samples when full)."""
        self.add_samples((sample,))

    def add_samples(self, samples: Sequence[Sample]) -> None:
        """:meth:`add_sample` for several, in step order, one write per field for each run that
        fits before the next thinning (a monitor's host half records many at small ``every``)."""
        pos = 0
        while pos < len(samples):
            if self._ns == self.max_samples:
                self._thin()
            chunk = samples[pos:pos + self.max_samples - self._ns]
            self._write(chunk)
            pos += len(chunk)

    def _write(self, samples: Sequence[Sample]) -> None:
        """Store ``samples`` after the kept ones (there is room for them)."""
        q, i = len(samples), self._ns
        for j, name in enumerate(_SAMPLE_FIELDS):
            values = [getattr(s, name) for s in samples]
            has = [v is not None for v in values]
            col = self._cols[name]
            if all(has):
                col[i:i + q] = np.asarray(values, dtype=np.float64).reshape(q, -1)
            else:
                for k, v in enumerate(values):
                    col[i + k] = np.nan if v is None else v
            self._has[i:i + q, j] = has
        self._step[i:i + q] = [s.step for s in samples]
        self._ns += q
        self.last_step = max(self.last_step, max(s.step for s in samples))

    def _thin(self) -> None:
        """Drop every second sample of the older half (the first sample, the baseline, stays)."""
        half = self._ns // 2
        keep = np.concatenate([[0], np.arange(2, half, 2), np.arange(half, self._ns)])
        m = keep.size
        self._step[:m] = self._step[keep]
        self._has[:m] = self._has[keep]
        for col in self._cols.values():
            col[:m] = col[keep]
        self._ns = m

    # -- reading -------------------------------------------------------------------
    @property
    def samples(self) -> tuple[Sample, ...]:
        """The kept samples, oldest first (built on demand)."""
        out = []
        for i in range(self._ns):
            kw: dict[str, Any] = {}
            for j, name in enumerate(_SAMPLE_FIELDS):
                if self._has[i, j]:
                    row = self._cols[name][i]
                    kw[name] = float(row[0]) if name in _SCALAR_FIELDS else row.copy()
            out.append(Sample(step=int(self._step[i]), **kw))
        return tuple(out)

    def view(self) -> History:
        """A frozen :class:`History` of everything recorded so far."""
        a = self._arch[:self._na]
        with np.errstate(invalid="ignore", divide="ignore"):
            arch_mean = np.where(a[:, 2] > 0, a[:, 1] / np.maximum(a[:, 2], 1), np.nan)
        steps = np.concatenate([a[:, 0].astype(np.int64), self._rs[:self._n]])
        vals = np.concatenate([arch_mean, self._rv[:self._n]])
        widths = np.concatenate([a[:, 3].astype(np.int64), np.ones(self._n, dtype=np.int64)])
        grads = np.concatenate([np.full(self._na, np.nan), self._rg[:self._n]])
        m = self.meta
        return History(
            framework=m.get("framework", "torch"), every=self.every,
            layers=tuple(m.get("layers", ())), layer_kinds=tuple(m.get("layer_kinds", ())),
            act_layers=tuple(m.get("act_layers", ())), act_kinds=tuple(m.get("act_kinds", ())),
            loss_steps=steps, loss_values=vals, loss_widths=widths, samples=self.samples,
            steps=int(widths.sum()), last_step=self.last_step,
            first_nonfinite_step=self.first_nonfinite_step, nonfinite_count=self.nonfinite_count,
            last_loss_finite=self.last_loss_finite, grad_source=m.get("grad_source"),
            notes=tuple(m.get("notes", ())), grad_values=grads,
            act_output=tuple(bool(x) for x in m.get("act_output", ())),
            optimizer=m.get("optimizer"), scheduler=m.get("scheduler"),
            val_steps=np.asarray([v[0] for v in self._val], dtype=np.int64),
            val_values=np.asarray([v[1] for v in self._val], dtype=np.float64),
        )

    def add_validation(self, step: int, value: float) -> None:
        """Record a validation loss measured at ``step`` (every other point is dropped when the
        bounded list is full, so a long run keeps its whole span)."""
        if len(self._val) >= self._val_max:
            self._val = self._val[::2]
        self._val.append((int(step), float(value)))

    @property
    def nbytes(self) -> int:
        """Bytes of the preallocated storage (the whole footprint of the recorded history)."""
        arrays = [self._rs, self._rv, self._rg, self._arch, self._step, self._has, *self._cols.values()]
        return int(sum(x.nbytes for x in arrays))


def json_num(x: float | None) -> float | str | None:
    """JSON-safe float: NaN/Inf become the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else str(x)
