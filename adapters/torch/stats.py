"""Reduce torch tensors to :class:`~netdoctor.snapshot.TensorStats` on their own device.

Each tensor costs a handful of single-pass reduction kernels and exactly one
device-to-host transfer (the scalars and the per-unit vectors are concatenated and copied
together). Only when the tensor holds NaN/Inf, values so tiny that float32 squares
underflow, or values so far from zero that the variance cancels, is a second, exact pass
made.

Exact and estimated: mean, std, min, max, l2, the NaN/Inf fraction and every per-unit
vector are exact. For a tensor of more than :data:`SAMPLE` entries (weights, gradients,
hidden outputs, the data), ``abs_mean`` and ``frac_zero``, which no built-in rule reads, are
measured only for ``Need.SPARSITY`` (``sparsity=True``), from the fixed subsample of
:mod:`netdoctor.adapters._sample` (its errors are given there), read in place by numpy on a
CPU; otherwise they are what the exact moments decide, NaN where they do not. Both are exact
wherever the moments decide them, and for an activation whose positives are counted per unit
when it has no negatives (a ReLU's: its positives are its non-zeros) or, off the CPU, whose
signs are counted. Four passes instead of six, with no full-size
temporaries: a check's cost on a dense model is mostly these tensors
(``bench/bench_check.py``). The small tensors of a model (biases, norm gains, a head) are
reduced together by :func:`reduce_many`. Gradients are reduced to their norms, with one copy to
the host for all of them (:func:`gradient_stats`): a gradient's norm is all the rules read of it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch

from netdoctor.adapters._common import all_different, column_counts, float32_cancels, unit_sums_cancel
from netdoctor.adapters._sample import RUN, SAMPLE, decided, from_sample, picks, sample_abs_nonzero
from netdoctor.snapshot import TensorStats

_LOW_PRECISION = (torch.float16, torch.bfloat16)
_TINY = 1e-12  # below this abs-max, float32 moments are recomputed in float64
_EXACT_LIMIT = 4096  # up to this many entries, the variance comes from an exact two-pass var_mean
# Reductions use torch's own threading: one thread below 32768 entries (its grain size), every thread
# from there on. A layer's output is reduced right after the layer computed it on every thread, so it
# lies split across the cores' caches, and one thread reading all of it takes twice as long (a 256x512
# output right after its matmul: 92 against 47 us); below the grain size only MKL's dot goes parallel
# (from about 16k entries, about 1 us slower), less than switching the thread count would cost.
_HOST_COUNT_LIMIT = 1 << 20  # a CPU activation up to this size has its positives per unit counted by numpy
HOST_LIMIT = 4096  #: CPU tensors up to this many entries are reduced with numpy (see _reduce_host)
_NO_SCALARS = torch.zeros(0)  # what _to_host gets when every scalar comes from the host vectors


@functools.lru_cache(maxsize=64)
def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).replace("torch.", "")


def _as_float(t: torch.Tensor) -> torch.Tensor:
    x = t.detach()
    if not x.is_floating_point() or x.dtype in _LOW_PRECISION or x.element_size() < 2:
        x = x.float()
    return x


def zero_stats(shape: tuple[int, ...], dtype: str) -> TensorStats:
    """Stats of an all-zero tensor (a trainable parameter the loss did not reach)."""
    return TensorStats(shape=tuple(int(s) for s in shape), frac_zero=1.0, dtype=dtype)


def _unit_view(x: torch.Tensor, unit_axis: int) -> torch.Tensor:
    """``x`` as ``(A, C, B)``: ``C`` units, the other axes folded before/after them."""
    if x.dim() <= 1:
        return x.reshape(1, -1, 1)
    ax = unit_axis % x.dim()
    a = 1
    for d in x.shape[:ax]:
        a *= int(d)
    return x.reshape(a, int(x.shape[ax]), -1)


def _unit_moments(v: torch.Tensor) -> list[torch.Tensor]:
    """Per-unit ``[sum, sum of squares, min, max]`` of an ``(A, C, B)`` view.

    Reduces the contiguous inner axis first: much faster on CPU than one strided
    multi-axis reduction (and than Welford's ``var_mean``).
    """
    if v.shape[2] == 1:
        y = v[:, :, 0]
        if y.device.type == "cpu" and y.dtype in (torch.float32, torch.float64) and y.is_contiguous():
            # numpy on the tensor's own buffer: a BLAS product for the sums, no squared copy (the
            # per-feature moments of a (256, 784) batch: 87 against 120 us with cold caches)
            a = y.numpy()
            with np.errstate(invalid="ignore", over="ignore"):
                parts = [np.ones(a.shape[0], dtype=a.dtype) @ a, np.einsum("ij,ij->j", a, a),
                         np.minimum.reduce(a, axis=0), np.maximum.reduce(a, axis=0)]
            return [torch.from_numpy(p) for p in parts]
        return [y.sum(0), y.square().sum(0), y.amin(0), y.amax(0)]
    return [v.sum(-1).sum(0), torch.linalg.vector_norm(v, 2, dim=-1).square().sum(0),
            v.amin(-1).amin(0), v.amax(-1).amax(0)]


def _to_host(scalars: torch.Tensor, vectors: list[torch.Tensor], counts: list[torch.Tensor],
             single_transfer: bool | None = None) -> tuple[list[float], list[np.ndarray], list[np.ndarray]]:
    """Copy the reductions to the host: one transfer on an accelerator, no copies on CPU.

    ``single_transfer`` forces the accelerator path (concatenate, then one copy) or the CPU
    path; ``None`` picks by the device.
    """
    if single_transfer is None:
        single_transfer = scalars.device.type != "cpu"
    if not single_transfer:
        return (scalars.tolist(), [v.numpy().astype(np.float64) for v in vectors],
                [c.numpy().astype(np.float64) for c in counts])
    sizes = [int(v.numel()) for v in vectors + counts]
    host = torch.cat([scalars.double()] + [v.double() for v in vectors + counts]).cpu().numpy()
    k = int(scalars.numel())
    out_s = host[:k].tolist()
    chunks = []
    for size in sizes:
        chunks.append(host[k:k + size])
        k += size
    return out_s, chunks[:len(vectors)], chunks[len(vectors):]


def _unit_sum(v: torch.Tensor) -> torch.Tensor:
    """Per-unit sum of an ``(A, C, B)`` float view."""
    if v.shape[2] == 1:
        return v[:, :, 0].sum(0)
    return v.sum(-1).sum(0)


def _count(mask: torch.Tensor) -> torch.Tensor:
    """Per-unit count of ``True`` entries of an ``(A, C, B)`` mask."""
    if mask.shape[2] == 1:
        return mask[:, :, 0].sum(0, dtype=torch.int32)
    return mask.sum(-1, dtype=torch.int32).sum(0)


def reduce(
    t: torch.Tensor,
    *,
    unit_axis: int | None = None,
    max_units: int = 4096,
    unit_moments: bool = False,
    active: bool = False,
    saturation: tuple[float, float] | None = None,
    nonneg: bool = False,
    sparsity: bool = True,
    row_sums: list[np.ndarray] | None = None,
    known_max: float | None = None,
) -> tuple[TensorStats, np.ndarray | None, np.ndarray | None]:
    """Statistics of ``t``, optionally with per-unit vectors.

    Moments come from sums and sums of squares (fast single passes); tensors small enough
    or nearly constant get an exact two-pass variance instead. Integer tensors are reduced
    as float32.

    Args:
        t: Any tensor.
        unit_axis: Axis of the units; required for the per-unit outputs.
        max_units: Per-unit vectors cover at most this many units (the first ones).
        unit_moments: Fill ``unit_mean/std/min/max`` of the stats.
        active: Also return, per unit, the fraction of entries > 0.
        saturation: ``(low, high)``: also return, per unit, the fraction of entries
            ``<= low`` or ``>= high``.
        nonneg: ``t`` has no negative entries by construction (the output of ``nn.ReLU``),
            a promise the caller keeps. With ``active``, the positives per unit then also give
            the minimum (0 unless every entry is positive), the non-zero count and ``sum |x|``
            (the sum) exactly: two passes fewer and no subsample. ``known_max``: with ``nonneg``, the
            maximum, known exactly without a pass (a ReLU's: its input's, or 0), one pass fewer.
        sparsity: Measure ``abs_mean`` and ``frac_zero`` of a tensor of more than
            :data:`~netdoctor.adapters._sample.SAMPLE` entries (from the subsample). Without it they
            are what the exact sum, minimum and maximum decide, NaN where they do not
            (:func:`~netdoctor.adapters._sample.decided`): no built-in rule reads them
            (``Need.SPARSITY``).
        row_sums: A list to which the sums of the rows of ``t`` (slices along the first axis) are
            appended, when they come with the whole-tensor sum at no extra pass (a tensor of two or
            more axes beyond numpy's small-tensor path, without per-unit vectors): a weight's keys for
            :func:`duplicate_unit_frac` (``keys``). Left empty otherwise.

    Returns:
        ``(stats, unit_active, unit_saturated)``; the vectors are ``None`` unless asked for.
    """
    if _host_ready(t, HOST_LIMIT):
        got = _reduce_host(t, unit_axis=unit_axis, max_units=max_units, unit_moments=unit_moments,
                           active=active, saturation=saturation)
        if got is not None:
            return got
    return _reduce(t, unit_axis=unit_axis, max_units=max_units, unit_moments=unit_moments,
                   active=active, saturation=saturation, nonneg=nonneg, sparsity=sparsity, row_sums=row_sums,
                   known_max=known_max)


BATCH_LIMIT = 1 << 14  #: CPU tensors up to this many entries are reduced together by :func:`reduce_many`


def reduce_many(tensors: list[torch.Tensor], max_units: int = 4096, sparsity: bool = True,
                row_sums: dict[int, np.ndarray] | None = None) -> list[TensorStats]:
    """Whole-tensor :func:`reduce` statistics of each tensor (a model's parameters or their gradients).

    The small CPU tensors among them (biases, norm gains, a classifier's head: up to
    :data:`BATCH_LIMIT` entries) are reduced together, in one numpy pass over their
    concatenation: a dozen calls for all of them rather than a dozen for each. The others,
    and any small one holding NaN/Inf, go through :func:`reduce` one by one (``sparsity`` as there);
    ``row_sums`` gets, by ``id`` of the tensor, the row sums :func:`reduce` hands out on the way.
    """
    out: list[TensorStats | None] = [None] * len(tensors)
    small = [i for i, t in enumerate(tensors) if _host_ready(t, BATCH_LIMIT)]
    if len(small) > 1:
        got = _reduce_host_many([tensors[i] for i in small])
        if got is not None:
            for i, st in zip(small, got):
                out[i] = st
    done: list[TensorStats] = []
    for st, t in zip(out, tensors):
        if st is None:
            keys: list[np.ndarray] = []
            st = reduce(t, max_units=max_units, sparsity=sparsity, row_sums=keys if row_sums is not None else None)[0]
            if keys and row_sums is not None:
                row_sums[id(t)] = keys[0]
        done.append(st)
    return done


def gradient_stats(tensors: list[torch.Tensor], max_units: int = 4096) -> list[TensorStats]:
    """Statistics of gradients: their norms (:meth:`~netdoctor.snapshot.TensorStats.of_norm`).

    The rules read a gradient's norm and whether it is finite, nothing else, so the gradients
    of a model are reduced to their norms (:func:`_norms`), with one copy to the host per device
    and dtype. A gradient whose norm is 0 or not finite (a zero gradient, NaN/Inf entries, a norm
    that overflows or underflows its dtype) is reduced in full by :func:`reduce`, which says
    exactly which.
    """
    out: list[TensorStats | None] = [None] * len(tensors)
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        if t.layout == torch.strided and t.is_floating_point() and t.numel() and not (t.is_quantized or t.is_nested):
            groups.setdefault((t.device, t.dtype), []).append(i)
    for idx in groups.values():
        norms = _norms([tensors[i].detach() for i in idx]).tolist()
        for i, norm in zip(idx, norms):
            if 0.0 < norm < math.inf:
                t = tensors[i]
                out[i] = TensorStats.of_norm(tuple(t.shape), norm, dtype_name(t.dtype))
    return [st if st is not None else reduce(t, max_units=max_units)[0] for st, t in zip(out, tensors)]


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norms of tensors of one device and dtype, stacked.

    On a CPU, single and double precision take BLAS dot products (twice as fast as torch's norm
    kernel, in the precision the weights' ``l2`` has); elsewhere one fused ``_foreach_norm`` call
    (one kernel launch for all of them on an accelerator) where torch has it.
    """
    first = tensors[0]
    if first.device.type == "cpu" and first.dtype in (torch.float32, torch.float64):
        # (numpy's dot instead: 0.014-0.019 ms more per MLP check, paired in the check)
        flats = [t.reshape(-1) for t in tensors]
        return torch.stack([torch.dot(f, f) for f in flats]).sqrt_()
    foreach = getattr(torch, "_foreach_norm", None)
    if foreach is not None:
        try:
            return torch.stack(list(foreach(tensors)))
        except (RuntimeError, TypeError, NotImplementedError):  # a tensor subclass or a backend without it
            pass
    return torch.stack([torch.linalg.vector_norm(t) for t in tensors])


def _unit_count(mask: np.ndarray) -> np.ndarray:
    """Per-unit count of an ``(A, C, B)`` byte mask, as float64 (a dense layer's, ``B == 1``, by
    :func:`~netdoctor.adapters._common.column_counts`)."""
    a, c, b = mask.shape
    if b != 1:
        return np.add.reduce(mask, axis=(0, 2), dtype=np.int32).astype(np.float64)
    return column_counts(mask.reshape(a, c))


def _host_ready(t: torch.Tensor, limit: int) -> bool:
    """A non-empty plain CPU tensor of at most ``limit`` entries that numpy can reduce."""
    return (t.device.type == "cpu" and 0 < t.numel() <= limit and t.layout == torch.strided
            and not (t.is_complex() or t.is_quantized or t.is_nested or t.dtype == torch.bool))


def _host_array(t: torch.Tensor) -> np.ndarray:
    x = t.detach()
    return (x.float() if x.dtype in _LOW_PRECISION else x).numpy()


def _reduce_host_many(tensors: list[torch.Tensor]) -> list[TensorStats] | None:
    """:func:`_reduce_host` of several small CPU tensors at once (``None``: one of them holds NaN/Inf,
    or numpy cannot read one): segment sums over their float64 concatenation."""
    try:
        arrays = [_host_array(t).reshape(-1) for t in tensors]
    except (RuntimeError, TypeError):  # a lazy neg/conj view, a tensor subclass numpy cannot take
        return None
    counts = [a.size for a in arrays]
    starts = [0]
    for size in counts[:-1]:
        starts.append(starts[-1] + size)
    sizes = np.array(counts, dtype=np.float64)
    flat = np.concatenate(arrays, dtype=np.float64, casting="unsafe")
    sums = np.add.reduceat(flat, starts)
    if not np.isfinite(sums).all():
        return None
    means = sums / sizes
    squares = np.add.reduceat(flat * flat, starts)
    variances = squares / sizes - means * means
    lows, highs = np.minimum.reduceat(flat, starts), np.maximum.reduceat(flat, starts)
    # float64 sums of at most BATCH_LIMIT squares keep about 12 digits: the one-pass variance stands
    # unless it is within 1e-9 of mean^2 (a nearly constant tensor, never a constant one: min == max
    # gives 0 below), where the centred squares take over
    if bool(np.any((variances <= 1e-9 * means * means) & (lows != highs))):
        d = flat - np.repeat(means, counts)
        variances = np.add.reduceat(d * d, starts) / sizes
    cols = zip(tensors, counts, means.tolist(), variances.tolist(), lows.tolist(), highs.tolist(),
               np.add.reduceat(np.abs(flat), starts).tolist(), squares.tolist(),
               np.add.reduceat(flat != 0, starts, dtype=np.int64).tolist())
    out = []
    for t, n, mean, var, mn, mx, l1, sq, nz in cols:
        out.append(TensorStats(
            shape=tuple(t.shape), mean=mean, std=math.sqrt(max(var, 0.0)) if mn != mx else 0.0, min=mn,
            max=mx, abs_max=max(abs(mn), abs(mx)), abs_mean=l1 / n, l2=math.sqrt(sq), frac_zero=(n - nz) / n,
            frac_nonfinite=0.0, dtype=dtype_name(t.dtype),
        ))
    return out


def _reduce_host(
    t: torch.Tensor,
    *,
    unit_axis: int | None,
    max_units: int,
    unit_moments: bool,
    active: bool,
    saturation: tuple[float, float] | None,
) -> tuple[TensorStats, np.ndarray | None, np.ndarray | None] | None:
    """:func:`reduce` of a small CPU tensor with numpy, in float64 (``None``: it holds NaN/Inf).

    A dozen torch kernel calls on a few thousand entries cost their dispatch, not their
    arithmetic (about 40 us against 10 us here); biases, norm gains and the output of a
    classifier are all this small. The results are those of the device path, exact.
    """
    try:
        a = _host_array(t).astype(np.float64)
    except (RuntimeError, TypeError):  # a lazy neg/conj view, a tensor subclass numpy cannot take
        return None
    flat = a.reshape(-1)
    n = flat.size
    mean = float(flat.sum()) / n
    if not math.isfinite(mean):
        return None
    d = flat - mean
    mn, mx = float(flat.min()), float(flat.max())
    stats_kw: dict[str, Any] = {}
    act = sat = None
    per_unit = unit_axis is not None and a.ndim >= 1 and (unit_moments or active or saturation is not None)
    if per_unit:
        ax = unit_axis % max(a.ndim, 1)
        cols = a.reshape(1) if a.ndim == 0 else a if ax == a.ndim - 1 else np.moveaxis(a, ax, -1)
        units = min(cols.shape[-1], max_units)
        rows = cols.reshape(-1, cols.shape[-1])[:, :units]
        k = rows.shape[0]
        # column sums as matrix-vector products, column extremes over the transposed copy: numpy's axis-0
        # reductions over a few columns are strided loops (a (256, 10) output: 14 against 4 us for both extremes)
        ones = np.ones(k)
        if unit_moments:
            um = (ones @ rows) / k
            by_unit = np.ascontiguousarray(rows.T)
            umin, umax = np.minimum.reduce(by_unit, axis=1), np.maximum.reduce(by_unit, axis=1)
            dev = rows - um
            us = np.sqrt(np.maximum((ones @ (dev * dev)) / k, 0.0))
            us[umin == umax] = 0.0
            stats_kw = {"unit_mean": um, "unit_std": us, "unit_min": umin, "unit_max": umax}
        if active:
            act = (ones @ (rows > 0)) / k
        if saturation is not None:
            sat = (ones @ ((rows <= saturation[0]) | (rows >= saturation[1]))) / k
    var = float(np.dot(d, d)) / n if mn != mx else 0.0
    stats = TensorStats(
        shape=tuple(t.shape), mean=mean, std=math.sqrt(var), min=mn, max=mx,
        abs_max=max(abs(mn), abs(mx)), abs_mean=float(np.abs(flat).sum()) / n,
        l2=math.sqrt(float(np.dot(flat, flat))), frac_zero=(n - np.count_nonzero(flat != 0)) / n,
        frac_nonfinite=0.0, dtype=dtype_name(t.dtype), **stats_kw,
    )
    return stats, act, sat


def _reduce(
    t: torch.Tensor,
    *,
    unit_axis: int | None = None,
    max_units: int = 4096,
    unit_moments: bool = False,
    active: bool = False,
    saturation: tuple[float, float] | None = None,
    nonneg: bool = False,
    sparsity: bool = True,
    row_sums: list[np.ndarray] | None = None,
    known_max: float | None = None,
) -> tuple[TensorStats, np.ndarray | None, np.ndarray | None]:
    """Body of :func:`reduce`."""
    shape = tuple(t.shape)  # a torch.Size holds ints
    dtype = dtype_name(t.dtype)
    if t.numel() == 0 or t.layout != torch.strided or t.is_complex() or t.is_quantized or t.is_nested:
        return TensorStats(shape=shape, dtype=dtype), None, None
    x = _as_float(t)
    n = x.numel()
    per_unit = unit_axis is not None and (unit_moments or active or saturation is not None)
    units = count = 0
    signed = host_active = from_units = False
    vectors: list[torch.Tensor] = []
    counts: list[torch.Tensor] = []
    glob: list[torch.Tensor] | None = None
    if per_unit:
        v = _unit_view(x, unit_axis)
        units_all = v.shape[1]
        units = min(units_all, max_units)
        vu = v[:, :units] if units < units_all else v
        count = v.shape[0] * v.shape[2]
        if unit_moments:
            vectors = _unit_moments(vu)
            if units == units_all and x.device.type == "cpu":
                glob, from_units = [], True  # the whole sum, squares, min and max from the host vectors (below)
            elif units == units_all:
                s1u, squ, mnu, mxu = vectors
                glob = [s1u.sum(), squ.sum(), mnu.min(), mxu.max()]
        # a CPU tensor's positives per unit are counted by numpy on its own buffer, after the moments
        # (a byte mask summed per unit); elsewhere they follow from sign(x), needed anyway for
        # sum |x| (below), when the view covers every unit of a contiguous tensor; else a mask is counted
        host_active = active and x.device.type == "cpu" and x.is_contiguous() and n <= _HOST_COUNT_LIMIT
        signed = active and not host_active and units == units_all and x.is_contiguous()
        # no negatives and every unit's positives counted: min, non-zeros and sum |x| follow from them
        nonneg = nonneg and host_active and units == units_all and not unit_moments
        if active and not signed and not host_active:
            counts.append(_count(vu > 0))
        if saturation is not None:
            lo, hi = saturation
            counts.append(_count((vu <= lo) | (vu >= hi)))
    else:
        nonneg = False
    flat = x.reshape(-1)
    sampled = not signed and not nonneg and n > SAMPLE  # the per-unit positives need every sign
    skipped = sampled and not sparsity  # abs_mean and frac_zero as far as the moments decide them
    rows = None
    if glob is None:
        # the sum from the rows' sums where they are wanted: the same single pass
        total = flat.sum() if row_sums is None or x.dim() < 2 else (rows := x.reshape(x.shape[0], -1).sum(1)).sum()
        # amin and amax: two vectorized passes, faster on CPU than aminmax's one
        glob = ([total, torch.dot(flat, flat)] + ([flat.amax()] if known_max is None else [])
                if nonneg  # the minimum follows below
                else [total, torch.dot(flat, flat), flat.amin(), flat.amax()])
    exact = n <= _EXACT_LIMIT
    if exact:
        var, mean = torch.var_mean(x, correction=0)
        glob += [var, mean]
    on_host = sampled and not skipped and flat.device.type == "cpu" and flat.is_contiguous()
    if not on_host and not nonneg and not skipped:
        # sign() then vectorized passes: several times faster on CPU than vector_norm(x, 1) plus
        # count_nonzero(x), even counting the temporary
        part = _subsample(flat) if sampled else flat
        sign = torch.sign(part)
        glob.append(torch.dot(part, sign))  # sum |x| (of the subsample)
        if signed:  # per unit: positives = (sum sign + sum |sign|) / 2, exact counts in float32 below 2^24
            pos_minus_neg = _unit_sum(sign.view(v.shape))
            nonzero = _unit_sum(sign.abs_().view(v.shape))
            glob.append(nonzero.sum())  # entries != 0
            counts.insert(0, (pos_minus_neg + nonzero) * 0.5)
        else:
            glob.append(sign.abs_().sum())  # entries != 0
    scalars, vec_h, count_h = _to_host(torch.stack(glob) if glob else _NO_SCALARS, vectors, counts)
    if from_units:
        scalars = [float(vec_h[0].sum()), float(vec_h[1].sum()), float(vec_h[2].min()), float(vec_h[3].max()), *scalars]
    if rows is not None and row_sums is not None:
        row_sums.append(rows.cpu().numpy())
    positives = None
    if host_active:
        positives = _unit_count(np.greater(vu.numpy(), 0).view(np.uint8))
        count_h.insert(0, positives)
    if on_host:  # a CPU tensor's subsample is read in place by numpy: three calls, no dispatch
        scalars += sample_abs_nonzero(flat.numpy())
    if nonneg and known_max is not None:
        scalars.insert(2, known_max)
    if nonneg:  # every entry >= 0: zero is the minimum unless every entry is positive; sum |x| is the sum
        nz_n = float(positives.sum())
        scalars.insert(2, 0.0 if nz_n < n else float(flat.amin()))
        scalars += [scalars[0], nz_n]
    s1, sq, mn_h, mx_h = scalars[:4]
    pos = 4
    if exact:
        var_h, mean_h = scalars[4], scalars[5]
        pos = 6
    else:
        mean_h = s1 / n
        var_h = sq / n - mean_h * mean_h
    if skipped:
        l1_h, nz_h = decided(n, s1, mn_h, mx_h)
    else:
        l1_h, nz_h = scalars[pos], scalars[pos + 1]
        if sampled:
            if not on_host:  # sums over the subsample on the device: scale them up
                l1_h, nz_h = l1_h * n / SAMPLE, nz_h * n / SAMPLE
            l1_h, nz_h = from_sample(l1_h, nz_h, n, s1, mn_h, mx_h)
    if sampled and positives is not None and mn_h >= 0 and units == units_all:  # no negatives: the positives are the non-zeros
        nz_h = float(positives.sum())
    count_h = [c / max(count, 1) for c in count_h]
    act = count_h[0] if active and per_unit else None
    sat = count_h[-1] if saturation is not None and per_unit else None
    if not (math.isfinite(mn_h) and math.isfinite(mx_h)):
        if signed:  # sign(NaN) is NaN: count the mask
            act = _count(vu > 0).cpu().numpy().astype(np.float64) / max(count, 1)
        return _reduce_nonfinite(x, vu if per_unit else None, units, shape, dtype, unit_moments and per_unit, act, sat)
    tiny = 0.0 < max(abs(mn_h), abs(mx_h)) < _TINY
    cancelled = not exact and mn_h != mx_h and float32_cancels(var_h, mean_h, n)
    if x.dtype != torch.float64 and (tiny or not math.isfinite(sq) or not math.isfinite(s1) or cancelled):
        stats = reduce(x.double(), unit_axis=unit_axis, max_units=max_units, unit_moments=unit_moments,
                       sparsity=sparsity)[0]
        return _with_dtype(stats, dtype), act, sat
    if cancelled:  # float64 sums of a few million near-equal squares cancel too: the two-pass variance
        var_h, mean_h = (float(v) for v in torch.var_mean(x, correction=0))
        sq = n * (var_h + mean_h * mean_h)
    unit = {}
    if vec_h:
        um = vec_h[0] / count
        uv = vec_h[1] / count - um * um
        constant = vec_h[2] == vec_h[3]  # exactly zero spread, whatever the sums say
        # units whose float32 sums cannot resolve the spread (a year-like feature: 2000 +- 10): again
        # around their mean, in float64
        redo = np.flatnonzero(unit_sums_cancel(uv, um, count) & ~constant)
        if redo.size:
            pick = torch.from_numpy(redo).to(vu.device)
            sub = vu.index_select(1, pick).double() - torch.from_numpy(um[redo]).to(vu.device).view(1, -1, 1)
            uv[redo] = sub.square().sum(dim=(0, 2)).cpu().numpy() / count
        uv = np.maximum(uv, 0.0)
        uv[constant] = 0.0
        unit = {"unit_mean": um, "unit_std": np.sqrt(uv), "unit_min": vec_h[2], "unit_max": vec_h[3]}
    var_h = max(var_h, 0.0) if mn_h != mx_h else 0.0
    stats = TensorStats(
        shape=shape, mean=mean_h, std=math.sqrt(var_h), min=mn_h, max=mx_h,
        abs_max=max(abs(mn_h), abs(mx_h)), abs_mean=l1_h / n,
        l2=math.sqrt(max(sq, 0.0)) if not exact else math.sqrt(max(n * (var_h + mean_h * mean_h), 0.0)),
        frac_zero=(n - nz_h) / n, frac_nonfinite=0.0, dtype=dtype, **unit,
    )
    return stats, act, sat


_SAMPLE_INDEX: dict[tuple[int, str], torch.Tensor] = {}


def _picks(n: int, device: torch.device) -> torch.Tensor:
    """:func:`~netdoctor.adapters._sample.picks` as a tensor on ``device`` (cached)."""
    key = (n, str(device))
    got = _SAMPLE_INDEX.get(key)
    if got is None:
        got = torch.from_numpy(picks(n)).to(device)
        if len(_SAMPLE_INDEX) > 256:
            _SAMPLE_INDEX.clear()
        _SAMPLE_INDEX[key] = got
    return got


def _subsample(flat: torch.Tensor) -> torch.Tensor:
    """The :data:`SAMPLE` entries of ``flat`` (more than that many) on its device (see :mod:`~netdoctor.adapters._sample`)."""
    n = int(flat.numel())
    return flat[:n // RUN * RUN].view(-1, RUN).index_select(0, _picks(n, flat.device)).reshape(-1)


def _with_dtype(stats: TensorStats, dtype: str) -> TensorStats:
    return TensorStats(
        shape=stats.shape, mean=stats.mean, std=stats.std, min=stats.min, max=stats.max,
        abs_max=stats.abs_max, abs_mean=stats.abs_mean, l2=stats.l2, frac_zero=stats.frac_zero,
        frac_nonfinite=stats.frac_nonfinite, dtype=dtype, unit_mean=stats.unit_mean,
        unit_std=stats.unit_std, unit_min=stats.unit_min, unit_max=stats.unit_max,
    )


def _reduce_nonfinite(x, vu, units, shape, dtype, unit_moments, act, sat):
    """Exact path for tensors holding NaN/Inf: moments over the finite entries only."""
    n = x.numel()
    fin = torch.isfinite(x)
    xs = x[fin].double()
    n_fin = int(xs.numel())
    if n_fin == 0:
        stats = TensorStats(shape=shape, frac_nonfinite=1.0, dtype=dtype)
    else:
        var, mean = torch.var_mean(xs, correction=0)
        mn, mx = torch.aminmax(xs)
        l1 = torch.linalg.vector_norm(xs, 1)
        nz = torch.count_nonzero(xs)
        mean_h, var_h, mn_h, mx_h, l1_h, nz_h = torch.stack([mean, var, mn, mx, l1, nz.double()]).cpu().tolist()
        stats = TensorStats(
            shape=shape, mean=mean_h, std=math.sqrt(max(var_h, 0.0)), min=mn_h, max=mx_h,
            abs_max=max(abs(mn_h), abs(mx_h)), abs_mean=l1_h / n_fin,
            l2=math.sqrt(max(n_fin * (var_h + mean_h * mean_h), 0.0)),
            frac_zero=(n_fin - nz_h) / n, frac_nonfinite=(n - n_fin) / n, dtype=dtype,
        )
    if unit_moments and vu is not None:
        ufin = torch.isfinite(vu)
        xn = torch.where(ufin, vu.double(), torch.nan)
        umean = torch.nanmean(xn, dim=(0, 2), keepdim=True)
        uvar = torch.nanmean((xn - umean) ** 2, dim=(0, 2))
        umin = torch.where(ufin, vu, torch.inf).amin(dim=(0, 2)).double()
        umax = torch.where(ufin, vu, -torch.inf).amax(dim=(0, 2)).double()
        host = torch.cat([umean.reshape(-1), uvar, umin, umax]).cpu().numpy()
        um, uv, umi, uma = (host[i * units:(i + 1) * units] for i in range(4))
        stats = _with_units(stats, um, np.sqrt(np.maximum(uv, 0.0)),
                            np.where(np.isinf(umi), np.nan, umi), np.where(np.isinf(uma), np.nan, uma))
    return stats, act, sat


def _with_units(stats: TensorStats, um, us, umin, umax) -> TensorStats:
    return TensorStats(
        shape=stats.shape, mean=stats.mean, std=stats.std, min=stats.min, max=stats.max,
        abs_max=stats.abs_max, abs_mean=stats.abs_mean, l2=stats.l2, frac_zero=stats.frac_zero,
        frac_nonfinite=stats.frac_nonfinite, dtype=stats.dtype, unit_mean=um, unit_std=us,
        unit_min=umin, unit_max=umax,
    )


_PROBES: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def _probe_vector(cols: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A fixed pseudo-random weighting of the columns (cached per size, device and dtype)."""
    key = (cols, str(device), dtype)
    got = _PROBES.get(key)
    if got is None:
        gen = torch.Generator().manual_seed(12345)
        got = (torch.rand(cols, generator=gen, dtype=torch.float64) + 0.5).to(device=device, dtype=dtype)
        if len(_PROBES) > 64:
            _PROBES.clear()
        _PROBES[key] = got
    return got


def duplicate_unit_frac(w: torch.Tensor, unit_dim: int = 0) -> float:
    """Fraction of units (slices along ``unit_dim``) exactly equal to another unit.

    ``(units - distinct units) / units``: 0.0 when all differ, ``(units-1)/units`` when all
    are identical. Each unit gets a fingerprint, a fixed weighted sum of its entries; equal
    units always get equal fingerprints (each is reduced by the same code in the same
    order), and only when fingerprints repeat are the units compared exactly.
    """
    if w.dim() == 0 or w.numel() == 0 or w.is_complex() or not w.is_floating_point():
        return 0.0
    m = _as_float(w)
    if unit_dim % m.dim():
        m = m.movedim(unit_dim, 0)
    units = m.shape[0]
    if units <= 1:
        return 0.0
    return _duplicates(m.reshape(units, -1), units)


_PREFIX = 64  # columns of the first, cheap fingerprint of the units


def _all_different(values: torch.Tensor) -> bool:
    """:func:`~netdoctor.adapters._common.all_different` of a 1-D tensor (numpy on a CPU: a sort of a
    few hundred values without torch's dispatch; on a device, its own sort)."""
    if values.device.type == "cpu":
        return all_different(values.numpy())
    v = torch.sort(values).values
    return not (v.numel() and bool(torch.isnan(v[-1]))) and not bool((v[1:] == v[:-1]).any())


def _distinct_keys(rows: torch.Tensor) -> bool:
    """All rows get different fingerprints (then they are all different)."""
    probe = _probe_vector(rows.shape[1], rows.device, rows.dtype)
    # elementwise product then a row reduction: identical rows give bit-identical keys
    return _all_different((rows * probe).sum(1))


def _duplicates(rows: torch.Tensor, units: int) -> float:
    # units that differ in their first column differ: for a randomly drawn weight that one
    # column (a strided read of a few hundred values) settles it; a repeat there (zeros, a
    # constant, a coarse grid) moves on to a fingerprint of the first columns, then of all
    if rows.device.type == "cpu":  # the column through numpy: no torch indexing dispatch
        differ = all_different(rows.numpy()[:, 0])
    else:
        differ = _all_different(rows[:, 0])
    if differ:
        return 0.0
    if rows.shape[1] > 2 * _PREFIX and _distinct_keys(rows[:, :_PREFIX]):
        return 0.0
    if _distinct_keys(rows):
        return 0.0
    distinct = int(torch.unique(rows, dim=0).shape[0])
    return (units - distinct) / units
