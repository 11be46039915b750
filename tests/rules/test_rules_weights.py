"""ND201-ND204 on hand-built snapshots, including the false-alarm traps of real networks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _factory import Net, blobs, find, mlp, param, run, stats

from netdoctor.findings import Severity
from netdoctor.snapshot import KIND_EMBEDDING, KIND_SCALE, ROLE_EMBEDDING, ROLE_OTHER, ROLE_WEIGHT, LayerRecord, Need


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1)


@pytest.fixture
def data(rng):
    return blobs(rng, n=128, d=8)


def test_nd201_zero_hidden_kernel_is_an_error(rng, data):
    net = Net().linear(rng.normal(0, 0.5, (16, 8))).act("relu").linear(np.zeros((16, 16))).act("relu") \
        .linear(rng.normal(0, 0.3, (3, 16)))
    [f] = run("ND201", net.snapshot(*data))
    assert f.severity == Severity.ERROR and f.layer == "fc2"
    assert "16x16" in f.message and "kaiming_normal_(model.fc2.weight" in f.snippet


def test_nd201_keras_snippet_names_the_layer(rng, data):
    net = Net().linear(np.zeros((16, 8)), name="dense").act("relu", name="dense/relu") \
        .linear(rng.normal(0, 0.3, (3, 16)), name="dense_1")
    [f] = run("ND201", net.snapshot(*data, framework="keras"))
    assert 'layers.Dense(16, activation="relu", kernel_initializer="he_normal", name="dense")' in f.snippet
    # a separate Activation layer is not written into the Dense constructor
    net = Net().linear(np.zeros((16, 8)), name="dense").act("relu", name="activation") \
        .linear(rng.normal(0, 0.3, (3, 16)), name="dense_1")
    [f] = run("ND201", net.snapshot(*data, framework="keras"))
    assert 'layers.Dense(16, kernel_initializer="he_normal", name="dense")' in f.snippet


def test_nd201_zero_final_head_is_info_only(rng, data):
    net = mlp(rng, [8, 16, 16, 3])
    net.layers[-1][1]["w"] = np.zeros((3, 16))
    [f] = run("ND201", net.snapshot(*data))
    assert f.severity == Severity.INFO and f.layer == "fc3" and f.evidence["head"] is True


def test_nd201_biases_norm_params_layer_scale_and_frozen_are_not_weight_matrices(rng, data):
    snap = Net().linear(he_like(rng, 16, 8)).bn(16, gamma=0.0).act("relu").linear(he_like(rng, 3, 16)).snapshot(*data)
    # all-zero bias (factory default), zero BN gamma (zero_init_residual), BN shift 0
    scale = LayerRecord(name="blocks.0.gamma", type_name="LayerScale", kind=KIND_SCALE,
                        params=(param("gamma", ROLE_OTHER, np.full((16, 1, 1), 1e-6)),))
    frozen = LayerRecord(name="mask", type_name="Linear", kind="linear",
                         params=(param("weight", ROLE_WEIGHT, np.zeros((4, 4)), trainable=False),))
    snap = replace(snap, layers=(*snap.layers[:2], scale, frozen, *snap.layers[2:]))
    assert run("ND201", snap) == []
    assert run("ND202", snap) == []


def test_nd201_zero_embedding_is_a_warning(rng, data):
    snap = mlp(rng, [8, 16, 3]).snapshot(*data)
    emb = LayerRecord(name="emb", type_name="Embedding", kind=KIND_EMBEDDING,
                      params=(param("weight", ROLE_EMBEDDING, np.zeros((100, 8))),))
    [f] = run("ND201", replace(snap, layers=(emb, *snap.layers)))
    assert f.severity == Severity.WARNING and "every token" in f.message


def he_like(rng, o, i):
    return rng.normal(0, np.sqrt(2 / i), (o, i))


def test_nd202_constant_init_is_an_error(rng, data):
    net = Net().linear(np.full((32, 8), 0.01)).act("relu").linear(np.full((32, 32), 0.01)).act("relu") \
        .linear(np.full((3, 32), 0.01))
    found = run("ND202", net.snapshot(*data))
    by_layer = {f.layer: f for f in found}
    assert by_layer["fc1"].severity == Severity.ERROR and by_layer["fc2"].severity == Severity.ERROR
    assert by_layer["fc3"].severity == Severity.INFO  # the head: each output unit gets its own gradient
    assert "all 256 entries equal 0.01" in by_layer["fc1"].message
    assert run("ND201", net.snapshot(*data)) == []  # constant, not zero


def test_nd202_duplicated_units(rng, data):
    row = rng.normal(0, 0.5, (1, 8))
    w = np.vstack([np.repeat(row, 10, axis=0), rng.normal(0, 0.5, (6, 8))])
    [f] = run("ND202", Net().linear(w).act("relu").linear(he_like(rng, 3, 16)).snapshot(*data))
    assert f.layer == "fc1" and f.evidence["duplicate_unit_frac"] == pytest.approx(10 / 16)
    assert "62% of its 16 units" in f.message and "limit 50%" in f.message


def test_nd202_random_and_frozen_constant_kernels_are_fine(rng, data):
    assert run("ND202", mlp(rng, [8, 16, 16, 3]).snapshot(*data)) == []
    net = Net().linear(np.full((16, 8), 0.125), trainable=False).act("relu").linear(he_like(rng, 3, 16))
    assert run("ND202", net.snapshot(*data)) == []  # a fixed averaging filter


def _torch_default(rng, o, i):
    b = 1 / np.sqrt(i)  # kaiming_uniform_(a=sqrt(5)): var = 1/(3 fan_in)
    return rng.uniform(-b, b, (o, i))


def _glorot_uniform(rng, o, i):
    b = np.sqrt(6 / (i + o))
    return rng.uniform(-b, b, (o, i))


@pytest.mark.parametrize("init", [_torch_default, _glorot_uniform, he_like])
@pytest.mark.parametrize("widths", [[2, 64, 64, 1], [64, 128, 128, 10], [784, 256, 10], [1, 10, 10, 1]])
def test_nd203_standard_inits_are_not_flagged_under_relu(rng, init, widths):
    x = rng.normal(0, 1, (64, widths[0]))
    y = rng.integers(0, widths[-1], 64) if widths[-1] > 1 else rng.normal(0, 1, (64, 1))
    snap = mlp(rng, widths, init=init).snapshot(x, y, loss="ce" if widths[-1] > 1 else "mse")
    assert run("ND203", snap) == []


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_nd203_standard_inits_are_not_flagged_under_tanh(rng, data, act):
    for init in (_torch_default, _glorot_uniform):
        assert run("ND203", mlp(rng, [8, 32, 32, 3], act=act, init=init).snapshot(*data)) == []


def test_nd203_keras2_random_uniform_on_narrow_relu_layers(rng):
    x = rng.uniform(-1, 1, (128, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(float)[:, None]
    net = mlp(rng, [2, 5, 5, 5, 1], init=lambda r, o, i: r.uniform(-0.05, 0.05, (o, i)))
    found = run("ND203", net.snapshot(x, y, loss="bce"))
    assert [f.layer for f in found] == ["fc1", "fc2", "fc3"]  # not the small head
    f = found[1]
    assert f.severity == Severity.WARNING and f.evidence["reference"] == "He"
    assert f.evidence["ratio"] < 0.01 and f.evidence["direction"] == "small"
    assert "He reference 2/fan_in = 0.4" in f.message and "relu" in f.message


def test_nd203_wide_dense_layers_and_theDeepChecker_conv_case(rng):
    x = rng.normal(0, 1, (32, 800))
    snap = Net().linear(rng.normal(0, 0.25, (64, 800)), initializer="RandomNormal").act("relu") \
        .linear(rng.normal(0, 0.25, (64, 64))).act("relu").linear(he_like(rng, 10, 64)).snapshot(x, rng.integers(0, 10, 32))
    [f] = run("ND203", snap)  # 25x He at fan_in 800; only 2x at fan_in 64 (TheDeepChecker's regrNN)
    assert f.layer == "fc1" and f.evidence["direction"] == "large" and f.evidence["initializer"] == "RandomNormal"
    assert "(RandomNormal)" in f.message
    # the CNN variant: a 5x5x32 -> 64 conv kernel drawn from N(0, 0.25^2), He std would be 0.05
    conv = LayerRecord(name="conv2", type_name="Conv2d", kind="conv", activation="relu",
                       params=(param("weight", ROLE_WEIGHT, rng.normal(0, 0.25, (64, 32, 5, 5))),))
    [g] = run("ND203", replace(snap, layers=(conv, *snap.layers[1:])))
    assert g.layer == "conv2" and g.evidence["fan_in"] == 800 and g.evidence["ratio"] > 20


def test_nd203_fan_out_mode_is_accepted_for_convs(rng):
    # EfficientNet's squeeze-excitation reduce conv: 96 -> 4 channels, VarianceScaling(2, fan_out)
    conv = LayerRecord(name="se_reduce", type_name="Conv2D", kind="conv", activation="silu",
                       params=(param("weight", ROLE_WEIGHT, rng.normal(0, np.sqrt(2 / 4), (4, 96, 1, 1))),))
    x, y = blobs(rng)
    snap = mlp(rng, [8, 16, 3]).snapshot(x, y)
    assert run("ND203", replace(snap, layers=(conv, *snap.layers))) == []


def test_nd203_many_layers_are_merged_into_one_finding(rng):
    x = rng.normal(0, 1, (64, 4))
    net = mlp(rng, [4] + [6] * 8 + [1], init=lambda r, o, i: r.uniform(-0.05, 0.05, (o, i)))
    [f] = run("ND203", net.snapshot(x, rng.normal(0, 1, (64, 1)), loss="mse"))
    assert f.message.startswith("8 layers") and len(f.evidence["layers"]) == 8
    assert f.snippet.count("kaiming_normal_") == 4


def test_nd203_small_heads_normalized_layers_and_residual_branches_are_fine(rng, data):
    small_head = mlp(rng, [8, 64, 10], init=he_like)
    small_head.layers[-1][1]["w"] = rng.normal(0, 0.01, (10, 64))
    y = rng.integers(0, 10, 128)
    assert run("ND203", small_head.snapshot(data[0], y)) == []
    # N(0, 1) kernels followed by BatchNorm: the norm undoes the scale
    bn = Net().linear(rng.normal(0, 1, (256, 8))).bn(256).act("relu").linear(rng.normal(0, 1, (256, 256))).bn(256) \
        .act("relu").linear(he_like(rng, 3, 256))
    assert run("ND203", bn.snapshot(*data)) == []
    # BERT-style N(0, 0.02) on 32-wide layers in a residual network
    bert = mlp(rng, [8, 32, 64, 32, 3], act="relu", init=lambda r, o, i: r.normal(0, 0.02, (o, i)))
    assert run("ND203", bert.snapshot(*data, residual=True)) == []
    assert run("ND203", bert.snapshot(*data, residual=False)) != []


def _vgg_like(rng, data, extractor_kind="conv"):
    """A He-initialized feature layer (relabelled as a conv) under a VGG classifier: two hidden dense
    layers and the head drawn from N(0, 0.01), as torchvision's VGG initializes them."""
    net = Net().linear(he_like(rng, 256, 8), name="features").act("relu") \
        .linear(rng.normal(0, 0.01, (128, 256)), name="fc1").act("relu") \
        .linear(rng.normal(0, 0.01, (128, 128)), name="fc2").act("relu") \
        .linear(rng.normal(0, 0.01, (10, 128)), name="head")
    snap = net.snapshot(data[0], rng.integers(0, 10, len(data[0])))
    feat = find(snap, "features")
    return replace(snap, layers=tuple(replace(r, kind=extractor_kind, type_name="Conv2d") if r is feat else r
                                      for r in snap.layers))


def test_nd203_small_vgg_classifier_is_info_when_gradients_reach_every_layer(rng, data):
    found = run("ND203", _vgg_like(rng, data))
    assert [f.layer for f in found] == ["fc1", "fc2"] and all(f.evidence["direction"] == "small" for f in found)
    assert [f.severity for f in found] == [Severity.INFO, Severity.INFO]
    assert all(f.evidence["gradients_reach"] for f in found)
    assert "dense classifier on top of the feature extractor" in found[0].message
    # no gradients measured: no evidence, so the warning stays
    no_grads = replace(_vgg_like(rng, data), collected=_vgg_like(rng, data).collected - {Need.GRADIENTS})
    assert {f.severity for f in run("ND203", no_grads)} == {Severity.WARNING}
    # the same small layers as a plain MLP (no feature extractor below them): a warning
    assert {f.severity for f in run("ND203", _vgg_like(rng, data, extractor_kind="linear"))} == {Severity.WARNING}


def test_nd203_small_classifier_whose_gradient_vanishes_stays_a_warning(rng, data):
    snap = _vgg_like(rng, data)
    feat = find(snap, "features")
    w = feat.params[0]
    starved = replace(w, grad=stats(np.full(w.stats.shape, 1e-12), None))  # the extractor gets 1e-12 relative
    snap = replace(snap, layers=tuple(replace(r, params=(starved, *r.params[1:])) if r is feat else r
                                      for r in snap.layers))
    assert {f.severity for f in run("ND203", snap)} == {Severity.WARNING}


def test_nd204_nan_weights_and_buffers(rng, data):
    snap = Net().linear(he_like(rng, 16, 8)).bn(16).act("relu").linear(he_like(rng, 3, 16)).snapshot(*data)
    w = he_like(rng, 16, 8)
    w[0, 0] = np.nan
    fc1 = find(snap, "fc1")
    fc1 = replace(fc1, params=(replace(fc1.params[0], stats=stats(w, None)), *fc1.params[1:]))
    bn = find(snap, "bn1")
    rv = np.ones(16)
    rv[3] = np.inf
    bn = replace(bn, params=(*bn.params[:2], replace(bn.params[2], stats=stats(rv, None))))
    snap = replace(snap, layers=(fc1, bn, *snap.layers[2:]))
    found = {f.layer: f for f in run("ND204", snap)}
    assert set(found) == {"fc1", "bn1"}
    assert found["fc1"].severity == Severity.ERROR and found["fc1"].evidence["params"] == {"weight": 1}
    assert "running_var" in found["bn1"].message
    assert "model.fc1.reset_parameters()" in found["fc1"].snippet


def test_nd204_finite_weights_are_silent(rng, data):
    assert run("ND204", mlp(rng, [8, 16, 3]).snapshot(*data)) == []


def test_nd203_too_large_head_is_info(rng, data):
    net = mlp(rng, [8, 64, 64, 10])
    net.layers[-1][1]["w"] = rng.normal(0, 1.0, (10, 64))  # N(0, 1) head: confident first predictions
    [f] = run("ND203", net.snapshot(data[0], rng.integers(0, 10, 128)))
    assert f.layer == "fc3" and f.severity == Severity.INFO and "head" in f.message
