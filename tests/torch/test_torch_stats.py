"""On-device reductions agree with the numpy reference (TensorStats.from_array)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from netdoctor.adapters.torch.stats import (  # noqa: E402
    BATCH_LIMIT, HOST_LIMIT, SAMPLE, _to_host, duplicate_unit_frac, gradient_stats, reduce, reduce_many,
)
from netdoctor.snapshot import TensorStats  # noqa: E402

SCALARS = ("mean", "std", "min", "max", "abs_max", "abs_mean", "l2", "frac_zero", "frac_nonfinite")


def _close(a: float, b: float, rel: float = 1e-4) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(b))


@pytest.mark.parametrize("shape,axis", [((64, 10), -1), ((8, 3, 5, 5), 1), ((7,), 0), ((4, 6, 9), -1),
                                        ((300, 40), -1), ((16, 8, 9, 9), 1), ((20, 5, 30), 1),
                                        ((600, 500), -1), ((64, 32, 12, 12), 1)])  # large: other kernels
def test_reduce_matches_reference(shape, axis):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g) * 3 + 1
    x[x.abs() < 0.3] = 0
    stats, active, sat = reduce(x, unit_axis=axis, unit_moments=True, active=True, saturation=(-2.0, 2.0))
    ref = TensorStats.from_array(x.numpy(), unit_axis=axis)
    estimated = ("abs_mean", "frac_zero") if x.numel() > SAMPLE else ()  # signed entries: from the subsample
    for f in SCALARS:
        assert _close(getattr(stats, f), getattr(ref, f), rel=1e-2 if f in estimated else 1e-4), f
    for f in ("unit_mean", "unit_std", "unit_min", "unit_max"):
        np.testing.assert_allclose(getattr(stats, f), getattr(ref, f), atol=1e-4)
    flat = np.moveaxis(x.numpy(), axis, -1).reshape(-1, x.shape[axis])
    np.testing.assert_allclose(active, (flat > 0).mean(0))
    np.testing.assert_allclose(sat, ((flat <= -2) | (flat >= 2)).mean(0))
    plain = reduce(x)[0]
    estimated = ("abs_mean", "frac_zero") if x.numel() > SAMPLE else ()  # from the subsample: see below
    for f in SCALARS:
        assert _close(getattr(plain, f), getattr(ref, f), rel=1e-2 if f in estimated else 1e-4), f
    assert plain.unit_mean is None


@pytest.mark.parametrize("shape", [(600, 500), (512, 784), (4096, 1024), (SAMPLE + 1,)])
def test_big_tensor_abs_mean_and_frac_zero_within_their_subsample_error(shape):
    """Above SAMPLE entries, abs_mean and frac_zero are estimated from SAMPLE of them; the rest stays exact."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g) * 0.05
    x[torch.rand(*shape, generator=g) < 0.3] = 0  # pruned: 30% zeros
    stats = reduce(x)[0]
    ref = TensorStats.from_array(x.numpy())
    se_zero = 0.5 / SAMPLE ** 0.5
    assert abs(stats.frac_zero - ref.frac_zero) < 5 * se_zero
    assert abs(stats.abs_mean - ref.abs_mean) < 5 * ref.abs_mean / SAMPLE ** 0.5
    for f in ("mean", "std", "min", "max", "abs_max", "l2", "frac_nonfinite"):  # float32 sums over 4M entries: 2e-5
        assert _close(getattr(stats, f), getattr(ref, f), rel=1e-4), f


def test_big_tensor_abs_mean_and_frac_zero_exact_where_the_moments_decide():
    n = 4 * SAMPLE
    zeros = reduce(torch.zeros(n))[0]
    assert zeros.frac_zero == 1.0 and zeros.abs_mean == 0.0
    positive = torch.rand(n) + 0.1  # no zeros, one sign
    st = reduce(positive)[0]
    assert st.frac_zero == 0.0 and st.abs_mean == pytest.approx(positive.double().mean().item(), rel=1e-6)
    relu = torch.relu(torch.randn(n))  # one sign with zeros: abs_mean exact, frac_zero estimated
    st = reduce(relu)[0]
    assert st.abs_mean == pytest.approx(relu.double().mean().item(), rel=1e-6)
    assert abs(st.frac_zero - (relu == 0).double().mean().item()) < 5 * 0.5 / SAMPLE ** 0.5
    one = torch.zeros(n)
    one[12345] = -2.0  # a single non-zero entry the subsample may miss: never reported as all zeros
    st = reduce(one)[0]
    assert 0 < 1 - st.frac_zero and st.abs_mean == pytest.approx(2.0 / n)


@pytest.mark.parametrize("shape,axis", [((600, 500), -1), ((64, 32, 12, 12), 1)])
def test_a_big_relu_output_counted_per_unit_keeps_exact_abs_mean_and_frac_zero(shape, axis):
    """No negatives: the per-unit positives are the non-zeros, and sum |x| is the sum."""
    g = torch.Generator().manual_seed(4)
    x = torch.relu(torch.randn(*shape, generator=g))
    stats, active, _ = reduce(x, unit_axis=axis, active=True)
    ref = TensorStats.from_array(x.numpy())
    assert stats.frac_zero == pytest.approx(ref.frac_zero, abs=1e-12)
    assert stats.abs_mean == pytest.approx(ref.abs_mean, rel=1e-5)
    flat = np.moveaxis(x.numpy(), axis, -1).reshape(-1, x.shape[axis])
    np.testing.assert_array_equal(active, (flat > 0).mean(0))


@pytest.mark.parametrize("case", ["relu", "conv", "positive", "zeros", "nan", "inf", "tiny", "small"])
def test_nonneg_relu_output_gives_what_the_general_path_gives(case):
    """``nonneg`` (a ReLU's output) takes min, non-zeros and sum |x| from the positives per unit: the
    same statistics as the general path, NaN/Inf and all-positive tensors included."""
    g = torch.Generator().manual_seed(5)
    shape, axis = ((64, 32, 12, 12), 1) if case == "conv" else ((70, 20), -1) if case == "small" else ((600, 500), -1)
    x = torch.relu(torch.randn(*shape, generator=g))
    if case == "positive":
        x = x + 0.5  # no zero: the minimum is measured
    elif case == "zeros":
        x = torch.zeros(*shape)
    elif case == "nan":
        x[3, 4] = float("nan")
    elif case == "inf":
        x[3, 4] = float("inf")
    elif case == "tiny":
        x = x * 1e-30  # float32 squares underflow: the float64 fallback
    general, active, _ = reduce(x, unit_axis=axis, active=True)
    fast, fast_active, _ = reduce(x, unit_axis=axis, active=True, nonneg=True)
    np.testing.assert_array_equal(fast_active, active)
    for f in SCALARS:
        a, b = getattr(fast, f), getattr(general, f)
        assert (np.isnan(a) and np.isnan(b)) or _close(a, b, rel=1e-6), f
    if case not in ("nan", "inf"):  # the maximum handed over (a ReLU's, from its input's statistics)
        known, known_active, _ = reduce(x, unit_axis=axis, active=True, nonneg=True, known_max=float(x.max()))
        np.testing.assert_array_equal(known_active, active)
        for f in SCALARS:
            assert getattr(known, f) == getattr(fast, f), f
    if case in ("relu", "conv", "positive", "zeros"):
        ref = TensorStats.from_array(x.numpy())
        for f in SCALARS:
            assert _close(getattr(fast, f), getattr(ref, f), rel=1e-5), f


def test_only_a_plain_relu_promises_no_negatives():
    """The records pass ``nonneg`` for F.relu and a plain nn.ReLU only: a subclass may compute
    anything, and another forward hook may replace the output."""
    from torch import nn

    from netdoctor.adapters.torch.records import Rec, _clamps_at_zero

    class Shifted(nn.ReLU):
        def forward(self, x):
            return super().forward(x) - 1.0

    def rec(module, act="relu"):
        return Rec(name="r", module=module, type_name=act, kind="activation", activation=act)

    assert _clamps_at_zero(rec(None)) and _clamps_at_zero(rec(nn.ReLU())) and _clamps_at_zero(rec(nn.ReLU6(), "relu6"))
    assert not _clamps_at_zero(rec(None, "leaky_relu")) and not _clamps_at_zero(rec(nn.LeakyReLU(), "leaky_relu"))
    assert not _clamps_at_zero(rec(Shifted()))
    hooked = nn.ReLU()
    hooked.register_forward_hook(lambda m, a, out: out - 1.0)
    hooked.register_forward_hook(lambda m, a, out: None)  # stands for the probe's own hook, registered after
    assert not _clamps_at_zero(rec(hooked))


def test_reduce_many_agrees_with_reduce_one_by_one():
    """The small tensors reduced together (one numpy pass) get what reduce() gives each alone."""
    g = torch.Generator().manual_seed(3)
    pruned = torch.randn(100, 50, generator=g)  # above HOST_LIMIT, within BATCH_LIMIT
    pruned[pruned.abs() < 0.5] = 0
    tensors = [torch.randn(512, generator=g) * 0.01 + 3, torch.zeros(10), torch.arange(12).reshape(3, 4),
               torch.randn(20, generator=g).half(), torch.full((7,), 2.5), pruned,
               torch.randn(300, 300, generator=g)]  # too big to batch: reduce() alone
    assert HOST_LIMIT < pruned.numel() <= BATCH_LIMIT < tensors[-1].numel()
    many = reduce_many(tensors)
    for t, got in zip(tensors, many):
        want = reduce(t)[0]
        assert got.shape == want.shape and got.dtype == want.dtype
        rel = 1e-5 if t.numel() > HOST_LIMIT else 1e-12  # reduce() takes float32 kernels above HOST_LIMIT
        for f in SCALARS:
            assert _close(getattr(got, f), getattr(want, f), rel=rel), (tuple(t.shape), f)
        assert got.min == want.min and got.max == want.max
    assert many[1].frac_zero == 1.0 and many[4].std == 0.0 and many[2].dtype == "int64"
    assert many[5].frac_zero == pytest.approx((pruned == 0).double().mean().item(), abs=0)  # batched: exact


def test_reduce_many_leaves_nonfinite_tensors_to_reduce():
    bad = torch.randn(30)
    bad[4] = float("nan")
    many = reduce_many([torch.randn(8), bad, torch.ones(5)])
    assert many[1].frac_nonfinite == pytest.approx(1 / 30)
    assert np.isfinite(many[1].mean) and many[2].mean == 1.0


def test_per_unit_moments_of_a_big_tensor_exact_with_its_abs_mean_from_the_subsample():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(600, 500, generator=g)
    x[x.abs() < 0.2] = 0
    stats = reduce(x, unit_axis=-1, unit_moments=True)[0]
    ref = TensorStats.from_array(x.numpy(), unit_axis=-1)
    for f in ("unit_mean", "unit_std", "unit_min", "unit_max"):
        np.testing.assert_allclose(getattr(stats, f), getattr(ref, f), atol=1e-5)
    for f in ("mean", "std", "min", "max", "l2"):
        assert _close(getattr(stats, f), getattr(ref, f)), f
    assert abs(stats.frac_zero - ref.frac_zero) < 5 * 0.5 / SAMPLE ** 0.5
    assert abs(stats.abs_mean - ref.abs_mean) < 5 * ref.abs_mean / SAMPLE ** 0.5


def test_reduce_skips_nonfinite_entries():
    x = torch.randn(100, 5)
    x[0, 0] = float("nan")
    x[3, 2] = float("inf")
    stats = reduce(x, unit_axis=-1, unit_moments=True)[0]
    ref = TensorStats.from_array(x.numpy(), unit_axis=-1)
    assert stats.frac_nonfinite == pytest.approx(2 / 500)
    for f in SCALARS:
        assert _close(getattr(stats, f), getattr(ref, f)), f
    np.testing.assert_allclose(stats.unit_mean, ref.unit_mean, atol=1e-6)
    assert reduce(torch.full((4,), float("nan")))[0].frac_nonfinite == 1.0


def test_tiny_values_do_not_underflow_to_zero():
    g = torch.randn(200, 50) * 1e-25
    stats = reduce(g)[0]
    assert stats.l2 == pytest.approx(g.double().norm().item(), rel=1e-5)
    assert stats.std > 0 and stats.dtype == "float32"


def test_constant_tensor_has_exactly_zero_spread():
    stats = reduce(torch.full((300, 20), 0.1), unit_axis=-1, unit_moments=True)[0]
    assert stats.std == 0.0 and np.all(stats.unit_std == 0.0)
    big = reduce(torch.full((100, 200), 1000.0) + torch.randn(100, 200) * 1e-3)[0]
    assert big.std == pytest.approx(1e-3, rel=0.05)


def test_integer_and_half_tensors():
    ids = reduce(torch.arange(10))[0]
    assert ids.dtype == "int64" and ids.mean == 4.5 and ids.frac_zero == 0.1
    half = reduce(torch.ones(8, 4, dtype=torch.float16))[0]
    assert half.dtype == "float16" and half.mean == 1.0


def test_unit_vectors_are_capped():
    stats, active, _ = reduce(torch.randn(32, 100), unit_axis=-1, max_units=16, unit_moments=True, active=True)
    assert stats.unit_mean.shape == (16,) and active.shape == (16,)


def test_duplicate_unit_fraction():
    w = torch.randn(6, 4)
    w[3] = w[1]
    w[5] = w[1]
    assert duplicate_unit_frac(w) == pytest.approx(2 / 6)
    assert duplicate_unit_frac(torch.ones(5, 3)) == pytest.approx(4 / 5)
    assert duplicate_unit_frac(torch.randn(5, 3)) == 0.0
    k = torch.randn(8, 3, 3, 3)
    k[2] = k[7]
    assert duplicate_unit_frac(k) == pytest.approx(1 / 8)
    z = torch.zeros(4, 3)
    z[1, 0] = -0.0
    assert duplicate_unit_frac(z) == pytest.approx(3 / 4)  # -0.0 equals 0.0


def test_single_transfer_path_matches_the_cpu_path():
    scalars = torch.tensor([1.5, -2.0, 3.0])
    vectors = [torch.arange(4.0), torch.ones(4)]
    counts = [torch.tensor([1, 2, 3, 4], dtype=torch.int32)]
    a = _to_host(scalars, vectors, counts, single_transfer=False)
    b = _to_host(scalars, vectors, counts, single_transfer=True)  # the accelerator path
    assert a[0] == b[0] == [1.5, -2.0, 3.0]
    for x, y in zip(a[1] + a[2], b[1] + b[2]):
        np.testing.assert_array_equal(x, y)
        assert y.dtype == np.float64


def test_duplicate_units_of_wide_weights():
    """Rows wider than the cheap first fingerprint: a repeat in the first columns only is not a duplicate,
    real duplicates and -0.0 vs 0.0 are found exactly."""
    torch.manual_seed(3)
    w = torch.randn(8, 300)
    assert duplicate_unit_frac(w) == 0.0
    w[1, :64] = w[0, :64]  # same first columns, different afterwards
    assert duplicate_unit_frac(w) == 0.0
    w[2] = w[0]
    w[3] = w[0]
    assert duplicate_unit_frac(w) == pytest.approx(2 / 8)
    z = torch.zeros(4, 200)
    z[0] = -0.0
    assert duplicate_unit_frac(z) == pytest.approx(3 / 4)
    assert duplicate_unit_frac(torch.randn(16, 3, 5, 5)) == 0.0


def _gradient_cases() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    nan = torch.randn(40, 30, generator=g)
    nan[5, 7] = float("nan")
    inf = torch.randn(300, 20, generator=g)
    inf[0, 0] = float("inf")
    return {
        "matrix": torch.randn(512, 300, generator=g) * 1e-3,
        "bias": torch.randn(7, generator=g),
        "half": torch.randn(64, 32, generator=g).half(),
        "zero": torch.zeros(16, 8),
        "nan": nan,
        "inf": inf,
        "tiny": torch.full((50, 4), 1e-30),  # float32 squares underflow: the norm is not 0
        "huge": torch.full((50, 4), 3e30),  # float32 squares overflow: the norm is finite
    }


def test_gradient_stats_are_exact_norms_and_full_stats_where_the_norm_cannot_tell():
    cases = _gradient_cases()
    got = dict(zip(cases, gradient_stats(list(cases.values()))))
    for name, t in cases.items():
        st = got[name]
        ref = TensorStats.from_array(t.float().numpy())
        assert st.shape == tuple(t.shape) and st.dtype == str(t.dtype).replace("torch.", ""), name
        assert _close(st.frac_nonfinite, ref.frac_nonfinite, 1e-9), name
        assert _close(st.l2, ref.l2, rel=1e-3 if name == "half" else 1e-5) and (st.l2 > 0) == (ref.l2 > 0), name
        if name in ("matrix", "bias", "half"):  # the norm alone: the rest is not measured, and says so
            assert all(np.isnan(getattr(st, f)) for f in ("mean", "std", "min", "max", "abs_max", "abs_mean",
                                                          "frac_zero")), name
        else:  # zero, non-finite or beyond float32's squares: every statistic, from reduce()
            for f in SCALARS:
                assert _close(getattr(st, f), getattr(ref, f), rel=1e-4), (name, f)
    assert got["zero"].frac_zero == 1.0 and got["nan"].frac_nonfinite == 1 / 1200


def test_gradient_stats_of_an_empty_tensor_say_nothing_is_missing():
    st, = gradient_stats([torch.zeros(0, 3)])
    assert st.shape == (0, 3) and st.l2 == 0.0 and not np.isnan(st.mean) and not np.isnan(st.frac_zero)


@pytest.mark.parametrize("n", [20000, 401408, 2 ** 21])
def test_reduce_keeps_the_spread_of_a_tensor_far_from_zero(n):
    """1000 + N(0, 0.01^2): a float32 sum of squares of n near-equal terms is off by about 1e-9 * n of
    itself (1e-4 at 400k entries), which would swamp the variance; the exact float64 passes take over."""
    g = torch.Generator().manual_seed(1)
    x = 1000 + torch.randn(n, generator=g) * 1e-2
    stats = reduce(x)[0]
    ref = TensorStats.from_array(x.numpy())
    assert stats.std == pytest.approx(ref.std, rel=1e-4)
    assert stats.mean == pytest.approx(ref.mean, rel=1e-7)


def test_without_sparsity_abs_mean_and_frac_zero_are_what_the_moments_decide():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 100, generator=g)  # 30000 entries: above the subsample
    mixed = reduce(x, sparsity=False)[0]
    assert np.isnan(mixed.abs_mean) and np.isnan(mixed.frac_zero)
    assert mixed.std == reduce(x)[0].std and mixed.min == float(x.min())
    pos = reduce(x.abs() + 1, sparsity=False)[0]  # one sign: sum |x| = |sum x|; no zero
    assert pos.abs_mean == pytest.approx(float((x.abs() + 1).double().mean()), rel=1e-6) and pos.frac_zero == 0.0
    neg = reduce(-x.abs() - 1, sparsity=False)[0]
    assert neg.abs_mean == pytest.approx(pos.abs_mean, rel=1e-6) and neg.frac_zero == 0.0
    zeros = reduce(torch.zeros(300, 100), sparsity=False)[0]
    assert zeros.abs_mean == 0.0 and zeros.frac_zero == 1.0
    small = reduce(x[:10], sparsity=False)[0]  # 1000 entries: exact, measured anyway
    assert small.abs_mean == pytest.approx(float(x[:10].abs().mean()), rel=1e-6)


@pytest.mark.parametrize("rows", [1, 7, 255, 256, 511, 1000])
def test_positives_per_unit_are_counted_exactly_at_any_batch(rows):
    from netdoctor.adapters.torch.stats import _unit_count

    g = torch.Generator().manual_seed(rows)
    x = torch.relu(torch.randn(rows, 33, generator=g))
    x[:, 0] = 1.0  # a unit positive in every row: its count reaches the batch (> 255 in bytes)
    mask = np.greater(x.numpy(), 0).view(np.uint8).reshape(rows, 33, 1)
    np.testing.assert_array_equal(_unit_count(mask), (x > 0).sum(0).double().numpy())
    stats, active, _ = reduce(x, unit_axis=-1, active=True, nonneg=True)
    np.testing.assert_allclose(active, (x > 0).double().mean(0).numpy())
    assert stats.frac_zero == pytest.approx(float((x == 0).double().mean()), abs=1e-12)


@pytest.mark.parametrize("rows", [8, 256, 3000])
def test_per_feature_moments_of_features_on_very_different_scales(rows):
    """Plain per-feature sums of x and x^2, and the features they cannot resolve summed again around
    their mean: a year-like column (2000 +- 0.01), a constant, an all-zero and a 0-255 column."""
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(rows, 5, generator=g)
    x[:, 1] = 2000 + 0.01 * torch.randn(rows, generator=g)
    x[:, 2] = 3.5
    x[:, 3] = 0.0
    x[:, 4] = 255 * torch.rand(rows, generator=g)
    st = reduce(x, unit_axis=-1, unit_moments=True)[0]
    ref = TensorStats.from_array(x.numpy(), unit_axis=-1)
    np.testing.assert_allclose(st.unit_mean, ref.unit_mean, rtol=1e-6)
    np.testing.assert_allclose(st.unit_std, ref.unit_std, rtol=2e-3, atol=1e-12)
    assert st.unit_std[2] == 0.0 and st.unit_std[3] == 0.0


@pytest.mark.parametrize("offset", [0.0, 1.0, 1e4])
def test_small_parameters_reduced_together_keep_a_tiny_spread_next_to_a_large_mean(offset):
    """The small tensors' one-pass float64 variance gives way to centred squares where it would lose
    its digits (a gain vector of 1e4 +- 1e-4); every moment matches the tensors reduced one by one."""
    g = torch.Generator().manual_seed(2)
    tensors = [torch.randn(300, generator=g, dtype=torch.float64) * 1e-4 + offset,
               torch.randn(20, 30, generator=g), torch.full((64,), 0.5)]
    together = reduce_many(tensors)
    for t, st in zip(tensors, together):
        ref = TensorStats.from_array(t.numpy())
        for f in ("mean", "min", "max", "abs_max", "abs_mean", "l2", "frac_zero"):
            assert _close(getattr(st, f), getattr(ref, f), rel=1e-9), f
        assert _close(st.std, ref.std, rel=1e-6)
    assert together[2].std == 0.0
