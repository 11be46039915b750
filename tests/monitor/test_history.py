"""The bounded history recorder: memory stays flat, the first NaN step is exact, samples thin out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netdoctor.history import HistoryRecorder, Sample
from netdoctor.rules.training.series import first_run, first_span, loss_level_at, loss_windows, trailing_median
from _monitor_helpers import make_history


def test_loss_points_stay_bounded_and_cover_every_step():
    rec = HistoryRecorder(50, recent=256, archive=64)
    for start in range(0, 200_000, 50):
        rec.add_losses(start, np.linspace(2.0, 1.0, 50))
    h = rec.view()
    assert len(h.loss_values) <= 2 * 256 + 64
    assert h.steps == 200_000 and h.last_step == 199_999
    assert np.all(np.diff(h.loss_steps) > 0)
    assert np.all(h.loss_widths[-256:] == 1)  # the recent steps are at full resolution
    assert h.loss_widths[0] > 1
    assert np.all(np.abs(h.loss_values - 1.5) <= 0.5 + 1e-9)  # bucket means of values in [1, 2]


def test_first_nonfinite_step_is_exact_even_after_it_is_archived():
    rec = HistoryRecorder(10, recent=64, archive=16)
    for start in range(0, 10_000, 10):
        v = np.ones(10)
        if start == 1230:
            v[7] = math.nan
        rec.add_losses(start, v)
    h = rec.view()
    assert h.first_nonfinite_step == 1237 and h.nonfinite_count == 1 and h.last_loss_finite
    assert np.isfinite(h.loss_values).all()  # a bucket averages its finite losses


def test_samples_are_thinned_keeping_the_first_and_the_recent_ones():
    rec = HistoryRecorder(10, max_samples=64)
    for i in range(5000):
        rec.add_sample(Sample(step=10 * i, grad_norm=float(i)))
    steps = [s.step for s in rec.samples]
    assert len(steps) <= 65
    assert steps[0] == 0 and steps[-1] == 49_990
    assert steps == sorted(steps)
    assert np.all(np.diff(steps[-16:]) == 10)


def test_samples_added_in_batches_equal_samples_added_one_by_one():
    """The monitor's host half records many samples at once: same store as one call each,
    with missing fields, per-layer arrays, and batches that cross the thinning point."""
    rng = np.random.default_rng(0)

    def sample(i: int) -> Sample:
        return Sample(step=3 * i, grad_norm=None if i % 5 == 0 else float(i), lr=1e-3 / (i + 1),
                      layer_grad=None if i % 7 == 0 else rng.random(3), layer_weight=rng.random(3),
                      act_dead=rng.random(2) if i % 2 else None)

    made = [sample(i) for i in range(400)]
    one, many = HistoryRecorder(3, max_samples=64), HistoryRecorder(3, max_samples=64)
    for rec in (one, many):
        rec.meta = {"layers": ["a", "b", "c"], "act_layers": ["r", "s"]}
    for s in made:
        one.add_sample(s)
    pos = 0
    for size in [1, 2, 16, 17, 3, 40, 16, 55, 250]:  # the last one thins several times in one call
        many.add_samples(made[pos:pos + size])
        pos += size
    assert pos == len(made) and many.last_step == one.last_step == 1197
    a, b = one.samples, many.samples
    assert [s.step for s in a] == [s.step for s in b] and len(a) < len(made)  # thinned alike
    for x, y in zip(a, b):
        for name in ("grad_norm", "lr", "layer_grad", "layer_weight", "layer_update", "act_dead", "act_saturated"):
            u, v = getattr(x, name), getattr(y, name)
            assert (u is None) == (v is None), name
            if u is not None:
                np.testing.assert_array_equal(u, v)


def test_sample_json_roundtrip_keeps_nan_and_inf():
    s = Sample(step=7, grad_norm=math.inf, layer_grad=np.asarray([1.0, math.nan]), layer_weight=np.asarray([2.0, 3.0]),
               lr=1e-3)
    d = s.to_json()
    assert d["grad_norm"] == "inf" and d["layer_grad"][1] == "nan" and d["layer_update"] is None
    back = Sample.from_json(d)
    assert back.step == 7 and math.isinf(back.grad_norm) and math.isnan(back.layer_grad[1]) and back.lr == 1e-3


def test_window_and_persistence_helpers():
    assert first_run([0, 1, 1, 0, 1, 1, 1], 3) == 4
    assert first_run([1, 1], 3) is None
    steps = np.asarray([0, 1, 2, 50, 100, 150])
    assert first_span(np.ones(6, bool), steps, 3, 100) == 0
    assert first_span(np.asarray([1, 1, 1, 0, 1, 1], bool), steps, 2, 100) is None  # runs of 3 and 51 steps
    assert first_span(np.asarray([0, 1, 1, 1, 1, 1], bool), steps, 2, 100) == 1
    assert first_span(np.asarray([1, 1, 1, 0, 0, 0], bool), steps, 3, 100) is None
    np.testing.assert_allclose(trailing_median(np.asarray([1.0, 2.0, 3.0, 4.0]), 2), [np.nan, 1.0, 1.5, 2.5])
    h = make_history(np.concatenate([np.full(20, 2.0), np.tile([1.0, 3.0], 10)]))
    w = loss_windows(h, 20)
    assert len(w) == 2 and w.lag1[1] < -0.9 and w.median[0] == 2.0
    assert loss_level_at(h, np.asarray([-1, 19]))[1] == pytest.approx(2.0)
    assert math.isnan(loss_level_at(h, np.asarray([-1]))[0])
