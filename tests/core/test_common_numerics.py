"""Framework-free numeric helpers both adapters share (netdoctor.adapters._common, _sample, _lossprobe)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netdoctor.adapters._common import column_counts, float32_cancels, unit_sums_cancel
from netdoctor.adapters._sample import decided


@pytest.mark.parametrize("rows", [0, 1, 254, 255, 256, 510, 511, 2000])
def test_column_counts_match_a_plain_sum_at_any_height(rows):
    rng = np.random.default_rng(rows)
    mask = rng.random((rows, 37)) < 0.7
    mask[:, 3] = True  # a full column: its count reaches the height (more than a byte holds)
    got = column_counts(mask)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, mask.sum(axis=0))
    np.testing.assert_array_equal(column_counts(mask.view(np.uint8)), mask.sum(axis=0))


def test_decided_gives_only_what_the_moments_decide():
    assert decided(10, 5.0, 0.1, 1.0) == (5.0, 10.0)  # all positive: sum |x| = sum x, no zero
    assert decided(10, -5.0, -1.0, -0.1) == (5.0, 10.0)
    assert decided(10, 0.0, 0.0, 0.0) == (0.0, 0.0)  # all zeros
    l1, nz = decided(10, 3.0, 0.0, 1.0)  # non-negative with zeros: sum |x| yes, the zeros no
    assert l1 == 3.0 and math.isnan(nz)
    assert all(math.isnan(v) for v in decided(10, 0.5, -1.0, 1.0))  # both signs: neither


def test_float32_cancellation_guard_grows_with_the_count():
    assert float32_cancels(1e-5, 1.0, 1000) and not float32_cancels(1e-3, 1.0, 1000)
    assert float32_cancels(1e-3, 1.0, 10 ** 6) and not float32_cancels(1e-1, 1.0, 10 ** 6)  # 1e-8 n = 1e-2


def test_unit_sums_cancel_marks_units_to_sum_again_around_their_mean():
    var = np.array([1.0, 1e-3, 0.0, np.inf, 0.5])
    mean = np.array([1.0, 1.0, 3.5, 1.0, 10.0])
    np.testing.assert_array_equal(unit_sums_cancel(var, mean, 256), [False, True, True, True, True])
    assert not unit_sums_cancel(np.array([0.2]), np.array([1.0]), 256)[0]
    assert unit_sums_cancel(np.array([0.2]), np.array([1.0]), 30000)[0]  # 1e-5 * rows = 0.3


@pytest.mark.parametrize("shift", [0.0, 50.0, 900.0])
def test_output_rows_match_the_row_wise_definitions(shift):
    """The shared row readings of an output (matrix-vector row sums, exponentials shifted by the global
    maximum) equal numpy's row-wise ones, also when one row lies far below the others (``shift``: that
    row's exponentials would underflow against the global maximum, and each row takes its own)."""
    from netdoctor.adapters._lossprobe import OutputRows

    rng = np.random.default_rng(3)
    z = rng.standard_normal((64, 10)) * 3
    z[5] -= shift
    rows = OutputRows.of(z)
    assert rows is not None and rows.classes == 10
    top = z.max(-1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(-1))
    np.testing.assert_allclose(rows.sums, z.sum(-1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rows.lse, lse, rtol=1e-12)
    np.testing.assert_allclose(rows.softmax(), np.exp(z - lse[:, None]), rtol=1e-9, atol=1e-300)
    assert rows.row_sum_err() == pytest.approx(float(np.abs(z.sum(-1) - 1).max()))
    assert rows.lse_err() == pytest.approx(float(np.abs(lse).max()))


def test_output_rows_refuse_what_they_cannot_read():
    from netdoctor.adapters._lossprobe import MAX_ENTRIES, OutputRows

    assert OutputRows.of(np.ones(8)) is None  # one axis: a value per sample, not rows of classes
    assert OutputRows.of(np.ones((0, 3))) is None
    assert OutputRows.of(np.array([[1.0, np.nan]])) is None
    assert OutputRows.of(np.ones((4, 3), dtype=np.float32)) is None  # float64 only
    assert OutputRows.of(np.zeros((MAX_ENTRIES // 4 + 1, 4))) is None


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_loss_probe_reads_cross_entropys_own_gradient_as_one(scale):
    """``grad_vs_ce`` compares the loss's gradient into the logits with mean cross-entropy's own,
    ``(softmax - onehot) / n``, over the rows the model gets wrong: 1 for that very gradient,
    ``scale`` for ``scale`` times it; no row of it is all zero."""
    from netdoctor.adapters._lossprobe import measure

    rng = np.random.default_rng(5)
    z = rng.standard_normal((128, 10)) * 2
    y = rng.integers(0, 10, 128)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(10)[y]
    got = measure(z, scale * (p - onehot) / len(y), y, "class_index")
    assert got.grad_vs_ce == pytest.approx(scale, rel=1e-9)
    assert got.zero_grad_rows == 0.0 and got.zero_grad_wrong == 0.0
    assert got.batch_sum_err == pytest.approx(float(np.abs(z.sum(0) - 1).max()))
