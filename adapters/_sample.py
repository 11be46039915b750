"""The fixed subsample behind a large tensor's ``abs_mean`` and ``frac_zero`` (both adapters).

No built-in rule reads these two statistics: above :data:`SAMPLE` entries the adapters measure them
only for a selected rule that needs ``Need.SPARSITY``, and otherwise report what the exact sum,
minimum and maximum decide (:func:`decided`; NaN where they do not). When measured, each
adapter takes them from :data:`SAMPLE` entries of the flattened tensor: :data:`RUN` adjacent
entries at each of ``SAMPLE // RUN`` random run positions (a row gather reads whole cache
lines), drawn once per tensor size from a generator seeded with that size, so the same tensor
always gives the same numbers. Their standard error is at most ``0.5 / sqrt(SAMPLE)`` = 0.004
for ``frac_zero`` when the zeros are scattered (zeros in whole rows count per run, up to
``0.5 / sqrt(SAMPLE / RUN)``) and about ``cv(|x|) / sqrt(SAMPLE)`` relative for ``abs_mean``
(0.6% for Gaussian weights). :func:`from_sample` makes both exact wherever the exact moments
decide them.

Framework-free: plain numpy, cached per size.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLE = 1 << 14  #: entries of the subsample
RUN = 32  #: adjacent entries per run of the subsample

_PICKS: dict[int, np.ndarray] = {}


def picks(n: int) -> np.ndarray:
    """Start runs (in units of :data:`RUN` entries) of the subsample of ``n`` > :data:`SAMPLE` entries, sorted."""
    got = _PICKS.get(n)
    if got is None:
        runs = n // RUN
        got = np.sort(np.random.default_rng(n).permutation(runs)[:SAMPLE // RUN])
        if len(_PICKS) > 256:
            _PICKS.clear()
        _PICKS[n] = got
    return got


def subsample(flat: np.ndarray) -> np.ndarray:
    """The :data:`SAMPLE` entries of a flat array of more than that many (a copy, ``(runs, RUN)``)."""
    n = flat.size
    return flat[:n // RUN * RUN].reshape(-1, RUN).take(picks(n), axis=0)


def sample_abs_nonzero(flat: np.ndarray) -> tuple[float, float]:
    """``(sum |x|, entries != 0)`` over the subsample of a flat array, scaled up to all its entries."""
    part = subsample(flat)
    scale = flat.size / SAMPLE
    return float(np.abs(part).sum()) * scale, float(np.count_nonzero(part != 0)) * scale  # a bool count: 3x faster than on floats


def decided(n: int, total: float, mn: float, mx: float) -> tuple[float, float]:
    """``(sum |x|, entries != 0)`` of ``n`` finite entries as far as their exact sum, minimum and maximum
    decide them, NaN where they do not: ``sum |x|`` for one sign, the count when no entry or every
    entry is zero."""
    l1 = abs(total) if mn >= 0 or mx <= 0 else math.nan  # one sign: sum |x| = |sum x|
    if mn > 0 or mx < 0:
        return l1, float(n)
    if mn == mx:  # all zeros
        return 0.0, 0.0
    return l1, math.nan


def from_sample(l1: float, nonzero: float, n: int, total: float, mn: float, mx: float) -> tuple[float, float]:
    """``(sum |x|, entries != 0)`` from their scaled subsample estimates, exact where the moments decide them.

    ``total``, ``mn`` and ``mx`` are the exact sum, minimum and maximum of all ``n`` entries.
    """
    l1_d, nonzero_d = decided(n, total, mn, mx)
    if not math.isnan(l1_d):
        l1 = l1_d
    if not math.isnan(nonzero_d):
        return l1, nonzero_d
    return l1, min(max(float(round(nonzero)), 1.0), float(n))  # not all zeros: at least one entry is not
