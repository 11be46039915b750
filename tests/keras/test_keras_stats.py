"""Reductions: host and device paths agree with the numpy reference; output classification."""

from __future__ import annotations

import numpy as np
import pytest
from keras_helpers import keras, rng

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
