"""ND101-ND103 on hand-built snapshots."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _factory import Net, blobs, find, mlp, run, stats

from netdoctor.findings import Severity
from netdoctor.snapshot import KIND_EMBEDDING, ROLE_EMBEDDING, DataStats, LayerRecord, ParamRecord


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_nd101_raw_pixels_fire_with_rescale_snippet(rng):
    x = rng.integers(0, 256, size=(128, 64)).astype(np.float64)
    y = rng.integers(0, 10, size=128)
    snap = mlp(rng, [64, 32, 10]).snapshot(x, y)
    [f] = run("ND101", snap)
    assert f.severity == Severity.WARNING and f.layer == "fc1"
    assert "limit 5" in f.message and f.evidence["max_feature_rms"] > 100
    assert "/ 255.0" in f.snippet
    keras = run("ND101", replace(snap, framework="keras"))[0]
    assert "layers.Rescaling(1.0 / 255.0)" in keras.snippet


def test_nd101_feature_scales_spanning_orders_of_magnitude(rng):
    x = rng.normal(0, 1, size=(256, 7)) * np.logspace(-3, 3, 7)
    snap = mlp(rng, [7, 16, 2]).snapshot(x, rng.integers(0, 2, 256))
    [f] = run("ND101", snap)
    assert f.evidence["spread"] > 1e4
    assert "spanning" in f.message and "limit 100x" in f.message
    assert "x_train.std(dim=0" in f.snippet
    keras = run("ND101", replace(snap, framework="keras"))[0]
    assert "norm.adapt(x_train)" in keras.snippet and "layers.Normalization" in keras.snippet


def test_nd101_all_tiny_inputs(rng):
    x = rng.normal(0, 1e-4, size=(128, 5))
    [f] = run("ND101", mlp(rng, [5, 8, 2]).snapshot(x, rng.integers(0, 2, 128)))
    assert "tiny" in f.message


def test_nd101_standardized_data_with_outliers_is_fine(rng):
    x = rng.normal(0, 1, size=(256, 10))
    x[:3] *= 40.0  # a few extreme outliers (|x| up to ~150)
    x = (x - x.mean(0)) / x.std(0)
    assert np.abs(x).max() > 10
    assert run("ND101", mlp(rng, [10, 16, 2]).snapshot(x, rng.integers(0, 2, 256))) == []


def test_nd101_sparse_columns_of_scaled_pixels_are_fine(rng):
    x = rng.integers(0, 17, size=(256, 64)) / 16.0
    x[:, :8] = 0.0
    x[0, :8] = 1 / 16  # border pixels that are non-zero in a single image
    assert run("ND101", mlp(rng, [64, 16, 10]).snapshot(x, rng.integers(0, 10, 256))) == []


def test_nd101_judges_what_the_entry_layer_sees_not_the_raw_data(rng):
    raw = rng.normal(500, 200, size=(256, 6))
    inside = (raw - raw.mean(0)) / raw.std(0)  # an in-model Normalization/mean subtraction
    snap = mlp(rng, [6, 16, 2]).snapshot(raw, rng.integers(0, 2, 256), entry_input=inside)
    assert snap.data.inputs["x"].max > 500
    assert run("ND101", snap) == []


def test_nd101_token_ids_into_an_embedding_are_not_features(rng):
    ids = rng.integers(0, 30000, size=(64, 16))
    table = rng.normal(0, 1, size=(30000, 8))
    emb = LayerRecord(name="emb", type_name="Embedding", kind=KIND_EMBEDDING, entry=True, consumes_model_input=True,
                      input=stats(ids), output=stats(table[ids]),
                      params=(ParamRecord(name="weight", role=ROLE_EMBEDDING, stats=stats(table, None)),))
    x, y = blobs(rng, d=8)
    snap = mlp(rng, [8, 4, 3]).snapshot(x, y)
    fc1 = replace(find(snap, "fc1"), entry=False, consumes_model_input=False)
    snap = replace(snap, layers=(emb, fc1, *snap.layers[1:]),
                   data=DataStats(inputs={"x": stats(ids)}, num_samples=64))
    assert run("ND101", snap) == []


def test_nd101_needs_real_data(rng):
    x = rng.integers(0, 256, size=(64, 16)).astype(float)
    snap = mlp(rng, [16, 8, 2]).snapshot(x, rng.integers(0, 2, 64), data=False)
    assert run("ND101", snap) == []


def test_nd102_nan_in_inputs_is_an_error(rng):
    x, y = blobs(rng, n=64, d=4)
    x_bad = x.copy()
    x_bad[3, 1] = np.nan
    x_bad[10, 2] = np.inf
    snap = mlp(rng, [4, 8, 3]).snapshot(x, y)
    snap = replace(snap, data=DataStats(inputs={"x": stats(x_bad)}, targets=stats(y, None), num_samples=64))
    [f] = run("ND102", snap)
    assert f.severity == Severity.ERROR
    assert f.evidence["count"] == 2 and "2 of 256" in f.message and "limit 0" in f.message
    assert "torch.isfinite" in f.snippet


def test_nd102_inf_in_targets(rng):
    x, y = blobs(rng, n=32, d=4)
    yy = y.astype(float)
    yy[0] = np.inf
    snap = mlp(rng, [4, 8, 3]).snapshot(x, y)
    snap = replace(snap, data=replace(snap.data, targets=stats(yy, None)), framework="keras")
    [f] = run("ND102", snap)
    assert "targets" in f.message and "np.isfinite" in f.snippet


def test_nd102_clean_data_is_silent(rng):
    x, y = blobs(rng)
    assert run("ND102", mlp(rng, [8, 8, 3]).snapshot(x, y)) == []


def test_nd103_constant_column_is_info(rng):
    x, y = blobs(rng, d=5)
    x[:, 2] = 7.0
    [f] = run("ND103", mlp(rng, [5, 8, 3]).snapshot(x, y))
    assert f.severity == Severity.INFO
    assert f.evidence["constant"] == [2] and f.evidence["values"] == [7.0]
    assert "1 of 5 features" in f.message and "256 samples" in f.message


def test_nd103_integer_ids_and_tiny_batches_are_skipped(rng):
    ids = rng.integers(0, 100, size=(64, 12))
    ids[:, 0] = 101  # [CLS] at position 0 in every sample
    x, y = blobs(rng, n=64, d=4)
    snap = mlp(rng, [4, 8, 3]).snapshot(x, y)
    assert run("ND103", replace(snap, data=DataStats(inputs={"input_ids": stats(ids)}, num_samples=64))) == []
    x4 = x[:4].copy()
    x4[:, 0] = 1.0
    assert run("ND103", mlp(rng, [4, 8, 3]).snapshot(x4, y[:4])) == []


def test_nd103_varied_features_are_silent(rng):
    x, y = blobs(rng)
    assert run("ND103", Net().linear(rng.normal(0, 0.3, (3, 8))).snapshot(x, y)) == []


def test_nd101_large_common_scale_before_batchnorm_is_info(rng):
    x = rng.normal(0, 60, size=(128, 3))  # caffe-style mean-subtracted pixels
    w = rng.normal(0, np.sqrt(2 / 3), (16, 3))
    snap = Net().linear(w).bn(16).act("relu").linear(rng.normal(0, 0.3, (2, 16))).snapshot(x, rng.integers(0, 2, 128))
    [f] = run("ND101", snap)
    assert f.severity == Severity.INFO and "`bn1` normalizes its output" in f.message
    spread = x * np.array([1e-3, 1.0, 1e3])
    [g] = run("ND101", Net().linear(w).bn(16).act("relu").linear(rng.normal(0, 0.3, (2, 16)))
              .snapshot(spread, rng.integers(0, 2, 128)))
    assert g.severity == Severity.WARNING


def test_feature_range_quantiles_match_numpy():
    """ND101's spread uses a partial-sort quantile; it must equal np.quantile's linear one."""
    import numpy as np

    from netdoctor.rules.data import _quantiles

    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 17, 784, 1000):
        for _ in range(20):
            a = rng.lognormal(0.0, 3.0, n)
            np.testing.assert_allclose(_quantiles(a, (0.05, 0.95)), np.quantile(a, (0.05, 0.95)), rtol=1e-12)
