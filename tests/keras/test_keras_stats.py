"""Reductions: host and device paths agree with the numpy reference; output classification."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras_helpers import keras, rng

from netdoctor.adapters._sample import SAMPLE
from netdoctor.adapters.keras import stats as ks
from netdoctor.snapshot import TensorStats

FIELDS = ("mean", "std", "min", "max", "abs_max", "abs_mean", "l2", "frac_zero", "frac_nonfinite")


def _data(nonfinite: bool) -> np.ndarray:
    a = rng(1).normal(3.0, 2.0, size=(40, 5, 6)).astype("float32")
    a[:, :, 2] = 7.0  # a constant unit
    a[3, 1, 4] = 0.0
    if nonfinite:
        a[0, 0, 0] = np.nan
        a[1, 2, 3] = np.inf
    return a


def _device(a: np.ndarray, **kw):
    """Force the keras.ops path (as for a tensor on an accelerator)."""
    x = keras.ops.convert_to_tensor(a)
    shape = tuple(x.shape)
    ax = len(shape) - 1 if kw.pop("per_unit", False) or kw.get("positive") or kw.get("saturation") else None
    units = shape[-1] if ax is not None else 1
    host, cnt = ks._reduce_device(x, ax, units, kw.get("positive", False), kw.get("saturation"))
    cap = 99 if ax is not None else 0
    return ks._combine(host, cnt, shape=shape, size=a.size, dtype="float32", max_units=cap), host


@pytest.mark.parametrize("nonfinite", [False, True])
@pytest.mark.parametrize("per_unit", [False, True])
def test_host_and_device_paths_match_reference(nonfinite: bool, per_unit: bool) -> None:
    a = _data(nonfinite)
    ref = TensorStats.from_array(a, unit_axis=-1)
    host = ks.tensor_stats(keras.ops.convert_to_tensor(a), max_units=99, per_unit=per_unit)[0]
    dev, _ = _device(a, per_unit=per_unit)
    for st in (host, dev):
        for f in FIELDS:
            assert getattr(st, f) == pytest.approx(getattr(ref, f), rel=1e-5, abs=1e-6), f
        assert st.shape == a.shape and st.dtype == "float32"
        if per_unit:
            np.testing.assert_allclose(st.unit_mean, ref.unit_mean, rtol=1e-5)
            np.testing.assert_allclose(st.unit_std, ref.unit_std, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(st.unit_min, ref.unit_min)
            np.testing.assert_allclose(st.unit_max, ref.unit_max)
            assert st.unit_std[2] == 0.0  # the constant unit, exactly
        else:
            assert st.unit_mean is None


def test_unit_active_and_saturation_fractions() -> None:
    a = rng(2).normal(size=(64, 7)).astype("float32") * 4
    relu = np.maximum(a, 0)
    _, active, _ = ks.tensor_stats(keras.ops.convert_to_tensor(relu), max_units=99, positive=True)
    np.testing.assert_allclose(active, (relu > 0).mean(axis=0))
    t = np.tanh(a)
    bounds = ks.saturation_bounds("tanh", 5.0)
    _, _, sat = ks.tensor_stats(keras.ops.convert_to_tensor(t), max_units=99, saturation=bounds)
    np.testing.assert_allclose(sat, ((t <= bounds[0]) | (t >= bounds[1])).mean(axis=0))
    assert sat.max() > 0
    _, dev_host = _device(t, saturation=bounds)
    np.testing.assert_allclose(dev_host[-1], sat)
    leaky = np.where(a > 0, a, 0.1 * a)
    _, active2, _ = ks.tensor_stats(keras.ops.convert_to_tensor(leaky), max_units=3, positive=True)
    np.testing.assert_allclose(active2, (leaky > 0).mean(axis=0)[:3])


def test_integer_tensors_report_their_dtype() -> None:
    ids = keras.ops.convert_to_tensor(np.array([[1, 2, 0], [4, 0, 6]], dtype="int32"))
    st = ks.tensor_stats(ids, max_units=9)[0]
    assert st.dtype == "int32" and st.is_integer and st.max == 6 and st.frac_zero == pytest.approx(2 / 6)


@pytest.mark.parametrize(
    ("values", "want"),
    [
        (np.array([[0.2, 0.8], [0.5, 0.5]]), "probabilities"),
        (np.array([[0.2], [0.9]]), "sigmoid"),
        (np.log(np.array([[0.25, 0.75], [0.5, 0.5]])), "log_probabilities"),
        (np.array([[2.0, -1.0], [0.1, 0.3]]), "logits"),
        (np.array([[np.nan, 1.0], [0.0, 0.0]]), "unknown"),
    ],
)
def test_looks_like(values: np.ndarray, want: str) -> None:
    t = keras.ops.convert_to_tensor(values.astype("float32"))
    assert ks.looks_like(t, ks.tensor_stats(t, max_units=8)[0]) == want


def test_array_stats_and_duplicate_units() -> None:
    w = rng(3).normal(size=(6, 4)).astype("float32")
    ref = TensorStats.from_array(w)
    st = ks.array_stats(w)
    for f in FIELDS:
        assert getattr(st, f) == pytest.approx(getattr(ref, f), rel=1e-6, abs=1e-9)
    assert ks.duplicate_unit_frac(w, (1,)) == 0.0
    w[:, 3] = w[:, 1]
    w[:, 2] = w[:, 1]
    assert ks.duplicate_unit_frac(w, (1,)) == pytest.approx(2 / 4)
    z = np.zeros((3, 3, 2, 5), dtype="float32")
    z[..., 0] = -0.0
    assert ks.duplicate_unit_frac(z, (3,)) == pytest.approx(4 / 5)
    assert ks.array_stats(np.array([np.nan, 1.0, 3.0], dtype="float32")).frac_nonfinite == pytest.approx(1 / 3)


def _exact_duplicate_frac(a: np.ndarray, axes: tuple[int, ...]) -> float:
    """Reference: compare the units byte for byte (-0.0 counted as 0.0)."""
    rest = [i for i in range(a.ndim) if i not in axes]
    m = np.transpose(a, list(axes) + rest).reshape(math.prod(a.shape[i] for i in axes), -1) + 0.0
    return (m.shape[0] - len({row.tobytes() for row in m})) / m.shape[0]


@pytest.mark.parametrize("axes", [(1,), (0,), (3,), (2, 3), (0, 1), (2,)])
def test_duplicate_units_fingerprint_agrees_with_exact_comparison(axes: tuple[int, ...]) -> None:
    """Fingerprints only decide "all units differ"; any repeat (duplicates, -0.0 vs 0.0, NaN units,
    a near-duplicate differing in one entry) gives the exact answer."""
    shape = (6, 4) if max(axes) < 2 and len(axes) == 1 and axes != (0, 1) else (3, 2, 4, 5)
    base = rng(7).normal(size=shape).astype("float32")
    cases = [base.copy()]
    for k in range(5):
        a = base.copy()
        u = np.moveaxis(a, axes[-1], 0)  # a view: edits land in ``a``
        if k == 0:
            u[1] = u[0]
        elif k == 1:
            u[:] = 0.0
            u[0] = -0.0
        elif k == 2:
            u[0] = np.nan
            u[1] = np.nan
        elif k == 3:
            u[1] = u[0]
            u[1].reshape(-1)[0] += 1e-3  # differs in one entry only
        else:
            u[:] = 1.5
        cases.append(a)
    for a in cases:
        assert ks.duplicate_unit_frac(a, axes) == pytest.approx(_exact_duplicate_frac(a, axes)), a
        assert ks.duplicate_unit_frac(np.asfortranarray(a), axes) == pytest.approx(_exact_duplicate_frac(a, axes))


@pytest.mark.parametrize("kind", ["positive", "negative", "zeros", "ints", "float64", "constant", "nonfinite", "offset"])
@pytest.mark.parametrize("shape", [(64, 9), (800, 530), (512, 512)])
def test_array_stats_agree_with_the_reference(kind: str, shape: tuple[int, int]) -> None:
    """Against ``TensorStats.from_array``: a small array through the one-copy float64 path; a large one
    through float32 moments with ``abs_mean`` and ``frac_zero`` from the shared subsample (within its
    error, exact where the signs decide them), or through the exact blockwise float64 passes where
    float32 moments would cancel (a constant, a large offset); NaN/inf through the masked path."""
    a = rng(5).normal(0.2, 1.0, size=shape).astype("float32")
    a = {"positive": np.abs(a), "negative": -np.abs(a), "zeros": np.where(a > 0.5, a, -0.0).astype("float32"),
         "ints": np.round(a * 10).astype("int32"), "float64": a.astype("float64"),
         "constant": np.full(shape, 0.3, dtype="float32"), "nonfinite": a,
         "offset": (1000 + a * 1e-2).astype("float32")}[kind]
    if kind == "nonfinite":
        a[0, 0], a[1, 1] = np.nan, np.inf
    ref = TensorStats.from_array(a)
    st = ks.array_stats(a)
    sampled = a.size > SAMPLE and kind not in ("constant", "offset", "nonfinite")
    estimated = {"frac_zero"} if kind in ("positive", "negative", "zeros") else {"abs_mean", "frac_zero"}
    for f in FIELDS:
        if sampled and f in estimated:
            continue
        rel = 1e-5 if sampled and kind != "float64" else 1e-6  # float32 sums over 400k entries
        assert getattr(st, f) == pytest.approx(getattr(ref, f), rel=rel, abs=1e-9), f
    if sampled:
        assert abs(st.frac_zero - ref.frac_zero) < 5 * 0.5 / SAMPLE ** 0.5
        assert abs(st.abs_mean - ref.abs_mean) < 5 * ref.abs_mean / SAMPLE ** 0.5
    if kind in ("positive", "negative") and sampled:
        assert st.frac_zero == ref.frac_zero == 0.0  # no zeros: min > 0 (or max < 0) decides it


@pytest.mark.parametrize("axes", [(1,), (0,), (3,)])
def test_duplicate_units_of_wide_kernels(axes: tuple[int, ...]) -> None:
    """Units longer than the cheap first fingerprint: a repeat of the first entries only is no duplicate."""
    shape = (300, 6) if axes == (1,) else (6, 300) if axes == (0,) else (3, 3, 40, 6)
    a = rng(9).normal(size=shape).astype("float32")
    assert ks.duplicate_unit_frac(a, axes) == 0.0
    b = np.moveaxis(a, axes[0], 0).copy()
    b.reshape(6, -1)[1, :64] = b.reshape(6, -1)[0, :64]
    b = np.ascontiguousarray(np.moveaxis(b, 0, axes[0]))
    assert ks.duplicate_unit_frac(b, axes) == pytest.approx(_exact_duplicate_frac(b, axes)) == 0.0
    c = np.moveaxis(a, axes[0], 0).copy()
    c[2] = c[0]
    c = np.ascontiguousarray(np.moveaxis(c, 0, axes[0]))
    assert ks.duplicate_unit_frac(c, axes) == pytest.approx(1 / 6)


def test_tall_narrow_activations_per_unit() -> None:
    """A convolution's output (many rows, few channels) is reduced on a folded view: the per-unit min,
    max, active and saturated fractions are those of the plain per-channel reductions."""
    a = rng(11).normal(size=(16, 12, 12, 8)).astype("float32")
    a[..., 3] = np.maximum(a[..., 3], 0.0)
    a[:, 0, 0, 5] = 0.0
    t = keras.ops.convert_to_tensor(a)
    stats, active, sat = ks.tensor_stats(t, max_units=8, per_unit=True, positive=True, saturation=(-1.0, 1.0))
    x2 = a.reshape(-1, 8)
    np.testing.assert_array_equal(stats.unit_min, x2.min(axis=0))
    np.testing.assert_array_equal(stats.unit_max, x2.max(axis=0))
    np.testing.assert_allclose(active, (x2 > 0).mean(axis=0))
    np.testing.assert_allclose(sat, ((x2 <= -1.0) | (x2 >= 1.0)).mean(axis=0))
    assert stats.frac_zero == pytest.approx(float((x2 == 0).mean()))
    assert ks._folded(x2).shape[1] > 8  # the folded path ran


def _large(seed: int, shape: tuple[int, ...], offset: float) -> np.ndarray:
    """A conv-sized activation: offset mean, a constant unit, a dead unit, scattered zeros and -0.0."""
    a = rng(seed).normal(offset, 2.0, size=shape).astype("float32")
    a[..., 1] = 7.25  # constant unit
    a[..., 2] = np.maximum(a[..., 2] - offset, 0.0)  # relu-like unit, about half zeros
    a[..., 3] = 0.0  # dead unit
    units = shape[-1]
    a.reshape(-1)[::units * 97] = 0.0  # scattered zeros in unit 0
    a.reshape(-1)[units * 5::units * 101] = -0.0
    return a


@pytest.mark.parametrize(("shape", "per_unit"), [
    ((64, 32, 32, 16), False), ((50, 30, 30, 12), False), ((3, 70001, 4), False),  # one unit: any shape
    ((64, 32, 32, 16), True), ((16, 16, 16, 384), True),  # per unit: the rows fold into wide blocks
])
@pytest.mark.parametrize("offset", [0.0, 300.0])
def test_blockwise_reduction_of_large_tensors(shape: tuple[int, ...], per_unit: bool, offset: float) -> None:
    """Tensors larger than two blocks are reduced block by block in one pass (shifted sums): every count,
    minimum and maximum is exact, the moments agree with the float64 reference to float32 rounding."""
    a = _large(12, shape, offset)
    assert a.size > (ks._WIDE_BLOCKS_FROM if per_unit else 2 * ks._BLOCK)
    units = shape[-1]
    assert not per_unit or ks._folded(a.reshape(-1, units)).shape[1] >= 256  # the blockwise path runs
    ref = TensorStats.from_array(a, unit_axis=-1)
    stats, active, sat = ks.tensor_stats(keras.ops.convert_to_tensor(a), max_units=units, per_unit=per_unit,
                                         positive=per_unit, saturation=(-1.0, 1.0) if per_unit else None)
    for f in ("min", "max", "abs_max", "frac_zero", "frac_nonfinite"):
        assert getattr(stats, f) == getattr(ref, f), f
    for f in ("mean", "std", "abs_mean", "l2"):
        assert getattr(stats, f) == pytest.approx(getattr(ref, f), rel=1e-5), f
    if not per_unit:
        return
    x2 = a.reshape(-1, units).astype(np.float64)
    np.testing.assert_array_equal(stats.unit_min, x2.min(axis=0))
    np.testing.assert_array_equal(stats.unit_max, x2.max(axis=0))
    np.testing.assert_allclose(stats.unit_mean, x2.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats.unit_std, x2.std(axis=0), rtol=1e-4, atol=1e-5)
    assert stats.unit_std[1] == 0.0 and stats.unit_std[3] == 0.0  # constant units, exactly
    np.testing.assert_array_equal(active, (x2 > 0).mean(axis=0))
    np.testing.assert_array_equal(sat, ((x2 <= -1.0) | (x2 >= 1.0)).mean(axis=0))


@pytest.mark.parametrize("per_unit", [False, True])
def test_blockwise_reduction_with_nonfinite_entries(per_unit: bool) -> None:
    a = _large(13, (64, 32, 32, 16), 1.0)
    a[10, 3, 4, 5] = np.nan
    a[20, 5, 6, 7] = -np.inf
    ref = TensorStats.from_array(a, unit_axis=-1)
    stats = ks.tensor_stats(keras.ops.convert_to_tensor(a), max_units=99, per_unit=per_unit)[0]
    for f in FIELDS:
        assert getattr(stats, f) == pytest.approx(getattr(ref, f), rel=1e-5), f
    assert stats.frac_nonfinite == pytest.approx(2 / a.size)


@pytest.mark.parametrize("case", ["signed", "relu", "offset", "constant", "nonfinite", "channels"])
def test_whole_tensor_on_the_host_with_per_unit_counts(case: str) -> None:
    """A host tensor of SAMPLE to _WHOLE_LIMIT entries reduced as a whole (a hidden output: no per-unit
    moments) takes array_stats plus per-unit counts: min, max and every count exact, the moments to float32
    rounding, abs_mean and frac_zero within the subsample's error where values of both signs leave them
    open, and exact for a ReLU's output (its positives are its non-zeros)."""
    g = rng(14)
    shape, ax = ((16, 8, 8, 32), 1) if case == "channels" else ((256, 512), 1)
    a = g.normal(size=shape).astype("float32")
    a[np.abs(a) < 0.3] = 0
    if case == "relu":
        a = np.maximum(a, 0)
    elif case == "offset":
        a = a * 1e-3 + 300.0  # a cancelling variance: the exact float64 passes
    elif case == "constant":
        a = np.full(shape, 2.5, dtype="float32")
    elif case == "nonfinite":
        a[3, 4], a[5, 6] = np.nan, np.inf
    assert ks.SAMPLE < a.size <= ks._WHOLE_LIMIT
    bounds = (-1.0, 1.0)
    stats, active, sat = ks.tensor_stats(keras.ops.convert_to_tensor(a), max_units=99, positive=True,
                                         saturation=bounds, unit_axis=ax)
    ref = TensorStats.from_array(a)
    for f in ("min", "max", "abs_max", "frac_nonfinite"):
        assert getattr(stats, f) == getattr(ref, f), f
    for f in ("mean", "std", "l2"):
        assert getattr(stats, f) == pytest.approx(getattr(ref, f), rel=1e-5, abs=1e-9), f
    open_ended = case in ("signed", "channels")  # entries of both signs: estimated from the subsample
    se = 5 / SAMPLE ** 0.5
    assert stats.frac_zero == pytest.approx(ref.frac_zero, abs=se if open_ended else 1e-12)
    assert stats.abs_mean == pytest.approx(ref.abs_mean, rel=se if open_ended else 1e-5)
    assert stats.unit_mean is None
    x2 = np.moveaxis(a, ax, -1).reshape(-1, a.shape[ax])
    np.testing.assert_array_equal(active, (x2 > 0).mean(axis=0)[:99])
    np.testing.assert_array_equal(sat, ((x2 <= -1.0) | (x2 >= 1.0)).mean(axis=0)[:99])


def test_host_view_reads_a_tensorflow_tensor_in_place() -> None:
    a = rng(14).normal(size=(8, 5)).astype("float32")
    t = keras.ops.convert_to_tensor(a)
    v = ks.host_view(t)
    np.testing.assert_array_equal(v, a)
    if keras.backend.backend() == "tensorflow":
        assert not v.flags.owndata and not v.flags.writeable  # a view of the tensor's buffer, no copy


def test_gradient_stats_are_exact_norms_and_full_stats_where_the_norm_cannot_tell() -> None:
    r = rng(4)
    nan = r.normal(size=(40, 30)).astype("float32")
    nan[5, 7] = np.nan
    cases = {
        "kernel": (r.normal(size=(512, 300)) * 1e-3).astype("float32"),
        "bias": r.normal(size=(7,)).astype("float32"),
        "half": r.normal(size=(64, 32)).astype("float16"),
        "zero": np.zeros((16, 8), "float32"),
        "nan": nan,
        "tiny": np.full((50, 4), 1e-30, "float32"),  # float32 squares underflow: the norm is not 0
        "huge": np.full((50, 4), 3e30, "float32"),  # float32 squares overflow: the norm is finite
    }
    for name, a in cases.items():
        st, ref = ks.gradient_stats(a), TensorStats.from_array(a)
        assert st.shape == a.shape and st.dtype == str(a.dtype), name
        assert math.isclose(st.frac_nonfinite, ref.frac_nonfinite) and (st.l2 > 0) == (ref.l2 > 0), name
        assert math.isclose(st.l2, ref.l2, rel_tol=1e-3 if name == "half" else 1e-5), name
        if name in ("kernel", "bias", "half"):  # the norm alone: the rest is not measured, and says so
            assert all(math.isnan(getattr(st, f)) for f in FIELDS if f not in ("l2", "frac_nonfinite")), name
        else:  # zero, non-finite or beyond float32's squares: every statistic
            for f in FIELDS:
                assert math.isclose(getattr(st, f), getattr(ref, f), rel_tol=1e-4, abs_tol=1e-12), (name, f)


@pytest.mark.parametrize("rows", [8, 256, 3000])
def test_per_unit_moments_of_features_on_very_different_scales(rows: int) -> None:
    """Plain per-unit sums, and units they cannot resolve summed again around their mean: a year-like
    column (2000 +- 0.01), a constant, an all-zero column, a huge one whose float32 squares overflow."""
    r = rng(rows)
    a = r.normal(size=(rows, 6)).astype("float32")
    a[:, 1] = 2000 + 0.01 * r.normal(size=rows)
    a[:, 2] = 3.5
    a[:, 3] = 0.0
    a[:, 4] = 3e19 * (1 + r.random(rows))
    a[:, 5] = 255 * r.random(rows)
    st = ks.tensor_stats(a, max_units=64, per_unit=True)[0]
    ref = TensorStats.from_array(a, unit_axis=-1)
    np.testing.assert_allclose(st.unit_mean, ref.unit_mean, rtol=1e-6)
    np.testing.assert_allclose(st.unit_std, ref.unit_std, rtol=2e-3, atol=1e-12)
    assert st.unit_std[2] == 0.0 and st.unit_std[3] == 0.0
    np.testing.assert_array_equal(st.unit_min, ref.unit_min)
    assert st.std == pytest.approx(ref.std, rel=1e-5)
