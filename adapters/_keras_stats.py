"""Summary statistics for the Keras adapter.

Activations are reduced inside Keras with ``keras.ops`` (on the model's device): a tensor
becomes a handful of per-unit vectors (one ``(k, units)`` array crosses to the host), and
the scalars of :class:`~netdoctor.snapshot.TensorStats` are combined from them in float64.
Small tensors (at most ``HOST_LIMIT`` entries) are copied and reduced with numpy, which is
an order of magnitude faster than a dozen eager kernel launches.
Parameters and gradients (the model's own state, which the host reads anyway to compare
units exactly) are reduced with numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netdoctor.snapshot import TensorStats

# Saturating activations: (centre, half-range test). A unit counts as saturated where
# ``|y - centre| > bound`` (``>=`` for the piecewise-linear "hard" variants).
_SATURATION = {
    "tanh": lambda t: (0.0, math.tanh(t), False),
    "sigmoid": lambda t: (0.5, 1.0 / (1.0 + math.exp(-t)) - 0.5, False),
    "softsign": lambda t: (0.0, t / (1.0 + t), False),
    "hard_sigmoid": lambda t: (0.5, 0.5, True),
    "hard_tanh": lambda t: (0.0, 1.0, True),
}


def saturation_test(activation: str | None, preact: float) -> tuple[float, float, bool] | None:
    """``(centre, bound, inclusive)`` for a saturating activation, else ``None``."""
    f = _SATURATION.get(activation or "")
    return f(preact) if f else None


HOST_LIMIT = 1 << 16  # tensors up to this many entries are reduced on the host (see tensor_stats)


def tensor_stats(
    x: Any,
    *,
    max_units: int,
    unit_axis: int = -1,
    positive: bool = False,
    saturation: tuple[float, float, bool] | None = None,
    dtype: str | None = None,
) -> tuple[TensorStats, np.ndarray | None, np.ndarray | None]:
    """Reduce a backend tensor to statistics and per-unit vectors.

    Large tensors are reduced inside Keras (``keras.ops``, on the model's device) into a
    ``(k, units)`` array, the only thing that crosses to the host. Tensors of at most
    ``HOST_LIMIT`` entries (256 KiB) are copied and reduced with numpy instead: for them a
    dozen device kernel launches cost far more than the copy. Both paths give the same
    numbers (tested).

    Args:
        x: A backend tensor (any dtype).
        max_units: Cap on the length of per-unit vectors.
        unit_axis: Axis of the units (last for channels_last Keras).
        positive: Also return, per unit, the fraction of entries > 0.
        saturation: Also return, per unit, the fraction of saturated entries.
        dtype: Dtype to report (defaults to the tensor's).

    Returns:
        ``(stats, frac_positive or None, frac_saturated or None)``.
    """
    from keras import backend as K

    dtype = dtype or K.standardize_dtype(x.dtype)
    shape = tuple(int(d) for d in x.shape)
    size = math.prod(shape)
    if size == 0:
        return TensorStats(shape=shape, dtype=dtype), None, None
    nd = len(shape)
    ax = unit_axis % nd if nd >= 2 else None
    units = shape[ax] if ax is not None else 1
    if size <= HOST_LIMIT:
        host, cnt_u = _reduce_host(x, ax, units, positive, saturation)
    else:
        host, cnt_u = _reduce_device(x, ax, units, positive, saturation)
    stats = _combine(host, cnt_u, shape=shape, size=size, dtype=dtype, max_units=max_units)
    extra = host[7:]
    pos = extra[0][:max_units] if positive else None
    sat = extra[-1][:max_units] if saturation is not None else None
    return stats, pos, sat


def _reduce_host(x: Any, ax: int | None, units: int, positive: bool,
                 saturation: tuple[float, float, bool] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit rows ``[sum d, sum d^2, min, max, sum |x|, zeros, shift, extras...]`` with numpy."""
    from keras import ops

    a = np.asarray(ops.convert_to_numpy(x))
    if ax is not None and ax != a.ndim - 1:
        a = np.moveaxis(a, ax, -1)
    x2 = a.reshape(-1, units).astype(np.float64)
    fin = np.isfinite(x2)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if fin.all():
            cnt = np.full(units, float(x2.shape[0]))
            mean = x2.mean(axis=0)
            lo, hi, xz = x2.min(axis=0), x2.max(axis=0), x2
        else:
            cnt = fin.sum(axis=0).astype(np.float64)
            xz = np.where(fin, x2, 0.0)
            mean = xz.sum(axis=0) / np.maximum(cnt, 1.0)
            lo = np.where(fin, x2, np.inf).min(axis=0)
            hi = np.where(fin, x2, -np.inf).max(axis=0)
        d = np.where(fin, x2 - mean, 0.0)
        rows = [np.zeros(units), (d * d).sum(axis=0), lo, hi, np.abs(xz).sum(axis=0),
                (x2 == 0).sum(axis=0).astype(np.float64), mean]
        if positive:
            rows.append((x2 > 0).mean(axis=0))
        if saturation is not None:
            centre, bound, inclusive = saturation
            dev = np.abs(x2 - centre)
            rows.append(((dev >= bound) if inclusive else (dev > bound)).mean(axis=0))
    return np.stack(rows), cnt


def _reduce_device(x: Any, ax: int | None, units: int, positive: bool,
                   saturation: tuple[float, float, bool] | None) -> tuple[np.ndarray, np.ndarray]:
    """The same rows as :func:`_reduce_host`, reduced with ``keras.ops``."""
    from keras import backend as K
    from keras import ops

    xf = x if K.standardize_dtype(x.dtype) == "float32" else ops.cast(x, "float32")
    if ax is not None and ax != len(x.shape) - 1:
        xf = ops.moveaxis(xf, ax, -1)
    x2 = ops.reshape(xf, (-1, units))
    rows = int(x2.shape[0])
    extra = []
    if positive:
        extra.append(ops.mean(ops.cast(ops.greater(x2, 0.0), "float32"), axis=0))
    if saturation is not None:
        centre, bound, inclusive = saturation
        dev = ops.abs(x2 - centre)
        hit = ops.greater_equal(dev, bound) if inclusive else ops.greater(dev, bound)
        extra.append(ops.mean(ops.cast(hit, "float32"), axis=0))
    shift = x2[:1]
    d = x2 - shift  # shifted sums: exact zero variance for constant units, no catastrophic cancellation
    parts = [ops.sum(d, axis=0), ops.sum(d * d, axis=0), ops.min(x2, axis=0), ops.max(x2, axis=0),
             ops.sum(ops.abs(x2), axis=0), ops.sum(ops.cast(ops.equal(x2, 0.0), "float32"), axis=0), shift[0]]
    host = ops.convert_to_numpy(ops.stack(parts + extra, axis=0)).astype(np.float64)
    if np.isfinite(host[:2]).all():
        return host, np.full(units, float(rows))
    fin = ops.isfinite(x2)  # NaN/Inf somewhere: moments over the finite entries only
    cnt = ops.sum(ops.cast(fin, "float32"), axis=0)
    xz = ops.where(fin, x2, 0.0)
    mean = ops.sum(xz, axis=0) / ops.maximum(cnt, 1.0)
    dz = ops.where(fin, x2 - mean, 0.0)
    parts = [ops.zeros_like(mean), ops.sum(dz * dz, axis=0), ops.min(ops.where(fin, x2, float("inf")), axis=0),
             ops.max(ops.where(fin, x2, float("-inf")), axis=0), ops.sum(ops.abs(xz), axis=0), parts[5], mean]
    host = ops.convert_to_numpy(ops.stack(parts + extra + [cnt], axis=0)).astype(np.float64)
    return host[:-1], host[-1]


def _combine(host: np.ndarray, cnt_u: np.ndarray, *, shape: tuple[int, ...], size: int, dtype: str,
             max_units: int) -> TensorStats:
    """Global and per-unit statistics from per-unit shifted sums (float64 on the host)."""
    sd, ssd, mn, mx, sabs, nz, shift = host[:7]
    total = float(cnt_u.sum())
    frac_nonfinite = float(1.0 - total / size)
    if total == 0:
        return TensorStats(shape=shape, frac_nonfinite=frac_nonfinite, dtype=dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(cnt_u > 0, cnt_u, np.nan)
        mean_u = shift + sd / c
        var_u = np.maximum(ssd / c - (sd / c) ** 2, 0.0)
    ok = cnt_u > 0
    mean = float(np.sum(cnt_u[ok] * mean_u[ok]) / total)
    var = float(np.sum(cnt_u[ok] * (var_u[ok] + (mean_u[ok] - mean) ** 2)) / total)
    l2 = math.sqrt(max(float(np.sum(cnt_u[ok] * (var_u[ok] + mean_u[ok] ** 2))), 0.0))
    lo, hi = float(np.min(mn[ok])), float(np.max(mx[ok]))
    return TensorStats(
        shape=shape,
        mean=mean,
        std=math.sqrt(max(var, 0.0)),
        min=lo,
        max=hi,
        abs_max=max(abs(lo), abs(hi)),
        abs_mean=float(sabs.sum() / total),
        l2=l2,
        frac_zero=float(nz.sum() / size),
        frac_nonfinite=frac_nonfinite,
        dtype=dtype,
        unit_mean=mean_u[:max_units],
        unit_std=np.sqrt(var_u[:max_units]),
        unit_min=np.where(ok, mn, np.nan)[:max_units],
        unit_max=np.where(ok, mx, np.nan)[:max_units],
    )


def looks_like(y: Any, stats: TensorStats) -> str:
    """Classify a model output: probabilities, sigmoid, log_probabilities or logits."""
    from keras import ops

    if stats.frac_nonfinite > 0 or stats.size == 0:
        return "unknown"
    nd = len(stats.shape)
    yf = ops.cast(y, "float32")
    if stats.min >= 0.0 and stats.max <= 1.0 + 1e-6:
        if nd >= 2:
            dev = float(ops.convert_to_numpy(ops.max(ops.abs(ops.sum(yf, axis=-1) - 1.0))))
            if dev < 1e-3:
                return "probabilities"
        return "sigmoid"
    if stats.max <= 0.0 and nd >= 2 and stats.shape[-1] > 1:
        lse = ops.logsumexp(yf, axis=-1)
        if float(ops.convert_to_numpy(ops.max(ops.abs(lse)))) < 1e-3:
            return "log_probabilities"
    return "logits"


def array_stats(a: Any) -> TensorStats:
    """Statistics of a host array (parameters and gradients), float64 accumulation."""
    arr = np.asarray(a)
    dtype = str(arr.dtype)
    shape = tuple(int(s) for s in arr.shape)
    x = arr.reshape(-1)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    n = x.size
    if n == 0:
        return TensorStats(shape=shape, dtype=dtype)
    fin = np.isfinite(x)
    all_finite = bool(fin.all())
    xf = x if all_finite else x[fin]
    frac_nonfinite = 0.0 if all_finite else float(1.0 - xf.size / n)
    if xf.size == 0:
        return TensorStats(shape=shape, frac_nonfinite=frac_nonfinite, dtype=dtype)
    mean = float(xf.mean(dtype=np.float64))
    var = float(xf.var(dtype=np.float64))
    lo, hi = float(xf.min()), float(xf.max())
    return TensorStats(
        shape=shape,
        mean=mean,
        std=math.sqrt(var),
        min=lo,
        max=hi,
        abs_max=max(abs(lo), abs(hi)),
        abs_mean=float(np.abs(xf).mean(dtype=np.float64)),
        l2=math.sqrt(xf.size * (var + mean * mean)),
        frac_zero=float(np.count_nonzero(x == 0) / n),
        frac_nonfinite=frac_nonfinite,
        dtype=dtype,
    )


def duplicate_unit_frac(a: Any, axes: tuple[int, ...]) -> float | None:
    """Fraction of units equal to an earlier unit: ``(units - distinct) / units``.

    Args:
        a: The weight array.
        axes: Axes that index the units (see ``_keras_layers.unit_axes``).
    """
    arr = np.asarray(a)
    if arr.ndim < 2 or not axes:
        return None
    rest = [i for i in range(arr.ndim) if i not in axes]
    units = math.prod(arr.shape[i] for i in axes)
    if units < 2:
        return 0.0
    m = np.ascontiguousarray(np.transpose(arr, list(axes) + rest).reshape(units, -1)) + 0.0  # -0.0 == 0.0
    m = np.ascontiguousarray(m)
    rows = m.view(np.dtype((np.void, m.dtype.itemsize * m.shape[1]))).reshape(units)
    distinct = len(np.unique(rows))
    return (units - distinct) / units
