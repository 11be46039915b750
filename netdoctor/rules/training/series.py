"""Series readings of the history rules (ND6xx): loss windows, persistence, trailing medians.

The shared vocabulary of :mod:`netdoctor.rules.training`'s rule modules: the history a snapshot
carries, windows of the loss curve, "a condition that held for ``patience`` consecutive checks
(spanning ``min_steps`` steps)", the loss level around a step, its peak, the last learning rate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from netdoctor.history import History
from netdoctor.snapshot import ModelSnapshot


@dataclass(frozen=True, slots=True, eq=False)
class LossWindows:
    """Consecutive windows of the finite loss curve.

    Attributes:
        start: First step of each window.
        end: Last step of each window.
        median: Median loss per window.
        sigma: Robust spread of the losses inside each window (IQR / 1.349).
        lag1: Lag-1 autocorrelation of the (linearly detrended) losses in each window;
            strongly negative values mean the loss alternates step to step.
        size: Points per window.
    """

    start: np.ndarray
    end: np.ndarray
    median: np.ndarray
    sigma: np.ndarray
    lag1: np.ndarray
    size: int

    def __len__(self) -> int:
        return int(self.median.size)


def loss_windows(history: History, size: int) -> LossWindows:
    """Split the finite loss points into consecutive windows of ``size`` points.

    The last, incomplete window is dropped (it is judged once it is complete).
    """
    steps, vals = history.finite_loss()
    n = vals.size // size
    if n == 0:
        z = np.zeros(0)
        return LossWindows(z.astype(np.int64), z.astype(np.int64), z, z, z, size)
    v = vals[: n * size].reshape(n, size)
    s = steps[: n * size].reshape(n, size)
    q75, q25 = np.percentile(v, [75, 25], axis=1)
    t = np.arange(size, dtype=np.float64)
    t -= t.mean()
    slope = (v - v.mean(axis=1, keepdims=True)) @ t / (t @ t)
    resid = v - v.mean(axis=1, keepdims=True) - slope[:, None] * t[None, :]
    denom = (resid * resid).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lag1 = np.where(denom > 0, (resid[:, 1:] * resid[:, :-1]).sum(axis=1) / denom, 0.0)
    return LossWindows(s[:, 0], s[:, -1], np.median(v, axis=1), (q75 - q25) / 1.349, lag1, size)


def first_run(mask: Iterable[bool], patience: int) -> int | None:
    """Index where ``mask`` first holds for ``patience`` consecutive entries, else ``None``."""
    run = 0
    for i, m in enumerate(mask):
        run = run + 1 if m else 0
        if run >= patience:
            return i - patience + 1
    return None


def first_span(mask: np.ndarray, steps: np.ndarray, patience: int, min_steps: int = 0,
               starts: np.ndarray | None = None) -> int | None:
    """Like :func:`first_run` over samples, but the run must also cover ``min_steps`` steps.

    Sample-based rules use it so that "persisted" means the same thing at ``every=1`` and
    ``every=100``: at least ``patience`` samples *and* at least ``min_steps`` steps. Entry
    ``i`` covers steps ``starts[i]..steps[i]`` (``starts`` defaults to ``steps``).
    """
    starts = steps if starts is None else starts
    start = None
    for i, m in enumerate(np.asarray(mask, dtype=bool).tolist()):
        if not m:
            start = None
            continue
        if start is None:
            start = i
        if i - start + 1 >= patience and steps[i] - starts[start] + 1 >= min_steps:
            return start
    return None


def trailing_median(values: np.ndarray, span: int) -> np.ndarray:
    """Entry ``i``: median of ``values[max(0, i - span):i]`` (the ``span`` entries before it; NaN at 0)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v.copy()
    padded = np.concatenate([np.full(span, np.nan), v[:-1]])
    windows = np.lib.stride_tricks.sliding_window_view(padded, span)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(windows, axis=1)


def loss_level_at(history: History, steps: np.ndarray, span: int = 20) -> np.ndarray:
    """Median of the last ``span`` finite loss points up to each of ``steps`` (NaN before any)."""
    ls, lv = history.finite_loss()
    if lv.size == 0:
        return np.full(len(steps), np.nan)
    trailing = trailing_median(np.append(lv, np.nan), span)  # entry j: median of lv[j-span:j]
    return trailing[np.searchsorted(ls, np.asarray(steps), side="right")]


#: Steps whose median is the initial loss level.
INITIAL_SPAN = 10


def initial_loss(history: History, span: int = INITIAL_SPAN) -> float:
    """The initial loss level (the untrained model's), NaN when no finite step.

    The first step's loss when single steps are reliable, and the median of the first
    ``span`` steps when they are not: with batch size 1 (or small noisy batches) one step's
    loss can be 100x below the level of the untrained model, and every rule comparing against
    it would misjudge the whole run. A step is unreliable when the typical within-window spread
    of the per-step losses (IQR / 1.349 over windows of 20) exceeds half their level. The first
    step stays the reference otherwise, because a run that blows up in its first steps has a
    median far above the untrained model's loss.
    """
    _, lv = history.finite_loss()
    if not lv.size:
        return math.nan
    win = loss_windows(history, 20)
    if len(win):
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = float(np.nanmedian(np.where(win.median > 0, win.sigma / win.median, np.nan)))
        if rel > 0.5:
            return float(np.median(lv[:span]))
    return float(lv[0])


def sustained_best(median: np.ndarray, patience: int, initial: float) -> np.ndarray:
    """Entry ``i``: the best level the loss *held* before window ``i``.

    A level is held when ``patience`` consecutive window medians all stay at or below it
    (the max of those medians); the best is the lowest such level among the runs of windows
    that end before ``i``, or ``initial`` if lower. One lucky window (a run of easy batches
    at batch size 1) therefore never becomes the baseline a later ordinary window is
    compared with.
    """
    n = median.size
    out = np.full(n, initial, dtype=np.float64)
    if n < patience:
        return out
    held = np.max(np.lib.stride_tricks.sliding_window_view(median, patience), axis=1)  # windows j..j+p-1
    best = np.minimum.accumulate(held)
    # window i may compare with runs ending at i-1 at the latest: run j ends at j+p-1 <= i-1
    idx = np.arange(n) - patience
    ok = idx >= 0
    out[ok] = np.minimum(best[idx[ok]], initial)
    return out


def robust_percentile(values: np.ndarray, q: float) -> float:
    """Percentile of the finite entries (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q)) if v.size else math.nan


def history_of(snap: ModelSnapshot) -> History | None:
    """The monitor's history the snapshot carries, if any."""
    h = snap.history
    return h if isinstance(h, History) else None


def last_lr(h: History) -> float | None:
    """The last recorded learning rate."""
    _, lr = h.series("lr")
    return float(lr[-1]) if lr.size else None


def loss_peak(h: History, span: int = 5) -> float:
    """Highest median of ``span`` consecutive finite losses (0 when the run is shorter)."""
    _, vals = h.finite_loss()
    if vals.size <= span:
        return 0.0
    return float(np.max(np.median(np.lib.stride_tricks.sliding_window_view(vals, span), axis=1)))
