"""ND301-ND304 on snapshots with real numpy gradients."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _factory import Net, blobs, find, he, mlp, param, run, stats

from netdoctor.config import Config
from netdoctor.engine import run_rules
from netdoctor.rules import registry
from netdoctor.findings import Severity
from netdoctor.analysis.gradflow import gradient_chain
from netdoctor.snapshot import ROLE_WEIGHT, LayerRecord, LossInfo


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2)


@pytest.fixture
def circles(rng):
    x = rng.uniform(-1, 1, (256, 2))
    return x, (np.linalg.norm(x, axis=1) > 0.7).astype(float)[:, None]


def _he_uniform(r, o, i):
    b = np.sqrt(6 / i)
    return r.uniform(-b, b, (o, i))


def _tiny_uniform(r, o, i):
    return r.uniform(-0.05, 0.05, (o, i))


def test_nd301_deep_sigmoid_stack_vanishes(rng, circles):
    snap = mlp(rng, [2] + [5] * 8 + [1], act="sigmoid", init=_he_uniform).snapshot(*circles, loss="bce")
    [f] = run("ND301", snap)
    assert f.severity == Severity.ERROR
    assert f.evidence["drop"] < 1e-3 and f.evidence["per_layer"] < 0.5
    assert set(f.evidence["grad_norms"]) == {f"fc{i}" for i in range(1, 10)}
    assert "limit 0.001x" in f.message and "per layer" in f.message
    assert "ReLU" in f.recommendation and "nn.BatchNorm1d(5)" in f.snippet


def test_nd301_tiny_uniform_init_starves_every_layer(rng, circles):
    # a ratio-only rule misses this one: first/last is ~1, but every relative gradient is ~1e-12
    snap = mlp(rng, [2] + [5] * 8 + [1], init=_tiny_uniform).snapshot(*circles, loss="bce")
    [f] = run("ND301", snap)
    assert f.evidence["relative_grads"]["fc1"] < 1e-9
    assert "limit 1e-7" in f.message and "He initialization" in f.recommendation
    assert 'kaiming_normal_(model.fc1.weight, nonlinearity="relu")' in f.snippet
    keras = run("ND301", replace(snap, framework="keras"))[0]
    assert 'kernel_initializer="he_normal"' in keras.snippet


@pytest.mark.parametrize("act, init", [("relu", _he_uniform), ("tanh", _he_uniform), ("relu", None),
                                       ("relu", lambda r, o, i: r.uniform(-1 / np.sqrt(i), 1 / np.sqrt(i), (o, i)))])
def test_nd301_healthy_plain_stacks_are_silent(rng, circles, act, init):
    widths = [2] + [5] * 8 + [1] if init is _he_uniform else [2] + [64] * 8 + [1]
    snap = mlp(rng, widths, act=act, init=init).snapshot(*circles, loss="bce")
    assert run("ND301", snap) == []


def test_nd301_residual_networks_are_judged_by_absolute_size_only(rng, circles):
    snap = mlp(rng, [2] + [5] * 8 + [1], act="sigmoid", init=_he_uniform).snapshot(*circles, loss="bce", residual=True)
    assert run("ND301", snap) == []


def test_nd301_surrogate_loss_downgrades_and_fitted_loss_is_not_vanishing(rng, circles):
    net = mlp(rng, [2] + [5] * 8 + [1], act="sigmoid", init=_he_uniform)
    rep = run_rules(net.snapshot(*circles, loss="bce", loss_source="surrogate"), [registry()["ND301"]], Config())
    [f] = rep.findings  # the depth decay is scale-free: still judged, as a warning
    assert f.severity == Severity.WARNING and "surrogate" in f.message
    [part] = rep.targets[0].skipped  # the absolute limit scales with the loss: skipped with the reason
    assert (part.code, part.part) == ("ND301", "absolute gradient limit") and "surrogate" in part.reason
    tiny = mlp(rng, [2] + [5] * 8 + [1], init=_tiny_uniform).snapshot(*circles, loss="bce")
    fitted = replace(tiny, loss=replace(tiny.loss, value=1e-5))
    assert run("ND301", fitted) == []


def test_nd301_zero_head_is_not_vanishing(rng):
    x, y = blobs(rng)
    net = mlp(rng, [8, 32, 32, 3])
    net.layers[-1][1]["w"] = np.zeros((3, 32))
    assert run("ND301", net.snapshot(x, y)) == []


def test_nd302_unit_normal_wide_layers_explode_with_a_concrete_clip(rng):
    x, y = blobs(rng, d=8)
    snap = mlp(rng, [8, 256, 256, 256, 3], init=lambda r, o, i: r.normal(0, 1, (o, i))).snapshot(x, y)
    [f] = run("ND302", snap)
    assert f.severity == Severity.ERROR
    n = f.evidence["max_norm"]
    assert 0 < n < f.evidence["global_norm"] / 5
    assert f"clip_grad_norm_(model.parameters(), max_norm={n:g})" in f.snippet
    assert f"at {n:g}" in f.recommendation
    keras = run("ND302", replace(snap, framework="keras"))[0]
    assert f"keras.optimizers.Adam(learning_rate=1e-3, global_clipnorm={n:g})" in keras.snippet
    assert "clipnorm=" in keras.snippet.splitlines()[1]


def test_nd302_raw_pixels_explode(rng):
    x = rng.integers(0, 256, (128, 64)).astype(float)
    [f] = run("ND302", mlp(rng, [64, 128, 128, 10]).snapshot(x, rng.integers(0, 10, 128)))
    assert max(f.evidence["relative_grads"].values()) > 10


def test_nd302_healthy_and_regression_heads_are_silent(rng):
    x, y = blobs(rng)
    assert run("ND302", mlp(rng, [8, 64, 64, 3]).snapshot(x, y)) == []
    # the lecture's regression: MSE on targets up to 4 puts the head near 9x, hidden layers near 1x
    xr = rng.uniform(-2, 2, (256, 1))
    snap = Net().linear(he(rng, 10, 1)).act("relu").bn(10).linear(he(rng, 10, 10)).act("relu") \
        .linear(rng.uniform(-0.7, 0.7, (1, 10))).snapshot(xr, xr ** 2, loss="mse")
    assert run("ND302", snap) == []


def _so48385830(rng, n=256):
    """SO 48385830: 64 -> 30 -> 10 without activations, weights and biases N(0, 1), MSE on one-hot targets."""
    x = rng.integers(0, 17, (n, 64)) / 16.0
    y = np.eye(10)[rng.integers(0, 10, n)]
    net = Net().linear(rng.normal(0, 1, (30, 64)), rng.normal(0, 1, 30)) \
        .linear(rng.normal(0, 1, (10, 30)), rng.normal(0, 1, 10))
    return net.snapshot(x, y, loss="mse")


def test_nd302_normal1_linear_net_of_so48385830_warns(rng):
    # 4.4x in the hidden layer (one SGD step at the post's lr 3 multiplies the loss by ~1e8), 11x at the head:
    # above the warning limit, below the error limit (whether it explodes depends on the learning rate)
    snap = _so48385830(rng)
    [f] = run("ND302", snap)
    assert f.severity == Severity.WARNING and f.layer == "fc1" and f.evidence["warning_band"]
    assert 3 < f.evidence["relative_grads"]["fc1"] < 10 and f.evidence["relative_grads"]["fc2"] < 100
    assert "warning above 3x, error above 10x)" in f.message and "SGD step at learning rate 0.2" in f.message
    [e] = run("ND302", snap, max_relative=4.0)
    assert e.severity == Severity.ERROR and "limit 4x)" in e.message


def test_nd302_limits_widen_on_small_probe_batches(rng):
    # a mean over 8 samples carries sqrt(32/8) = 2x the sampling noise of a 32-sample mini-batch
    snap = replace(_so48385830(rng), batch_size=8)
    assert 3 < gradient_chain(snap)[0].rel < 6
    assert run("ND302", snap) == []
    [f] = run("ND302", snap, max_relative=2.0)
    assert "limit 4x at 8 samples" in f.message and f.evidence["limit_widening"] == pytest.approx(2.0)


def test_nd302_growth_toward_the_input(rng):
    x, y = blobs(rng)
    snap = mlp(rng, [8, 32, 32, 32, 3]).snapshot(x, y)
    fc1 = find(snap, "fc1")
    w = fc1.params[0]
    big = replace(w, grad=stats(np.full(w.stats.shape, 1e3 * w.grad.l2 / np.sqrt(w.stats.size)), None))
    snap = replace(snap, layers=(replace(fc1, params=(big, *fc1.params[1:])), *snap.layers[1:]))
    [f] = run("ND302", snap, max_relative=1e9, max_relative_head=1e9)
    assert "toward the input" in f.message and f.evidence["growth"] > 100


def test_nd303_overflowing_exp_activation(rng):
    x, y = blobs(rng, d=4)
    net = Net().linear(rng.normal(0, 30, (8, 4))).act("exp").linear(rng.normal(0, 30, (8, 8))).act("exp") \
        .linear(he(rng, 3, 8))
    snap = net.snapshot(x * 10, y)
    [f] = run("ND303", snap)
    assert f.severity == Severity.ERROR
    assert "act" in f.layer and "first non-finite value appears in the output of" in f.message
    assert "detect_anomaly" in f.snippet


def test_nd303_points_at_nonfinite_inputs(rng):
    x, y = blobs(rng, d=4)
    x[0, 0] = np.nan
    [f] = run("ND303", mlp(rng, [4, 8, 3]).snapshot(x, y))
    assert "ND102" in f.message


def test_nd303_silent_on_finite_loss_and_gradients(rng):
    x, y = blobs(rng)
    assert run("ND303", mlp(rng, [8, 16, 3]).snapshot(x, y)) == []


def test_nd303_nan_loss_with_finite_gradients(rng):
    # -(onehot * log(logits)).sum(1).mean(): log of the negative logits is NaN, the zero target entries
    # multiply those NaNs away in the gradient, so every gradient is finite but the loss is NaN
    x, y = blobs(rng)
    snap = mlp(rng, [8, 16, 3]).snapshot(x, y)
    assert snap.output.stats.min < 0
    assert all(p.grad.frac_nonfinite == 0 for _, p in snap.iter_params())
    nan_loss = replace(snap, loss=LossInfo(name="loss_fn", expects="any", value=float("nan")))
    [f] = run("ND303", nan_loss)
    assert f.severity == Severity.ERROR and f.evidence["layers"] == []
    assert "probe loss is nan while every gradient is finite" in f.message
    assert "log of a negative output" in f.message
    assert "nn.CrossEntropyLoss()" in f.snippet and "logits" in f.recommendation


def _zero_grad_layer(name: str, executed: bool, rng) -> LayerRecord:
    w = rng.normal(0, 0.3, (8, 8))
    return LayerRecord(name=name, type_name="Linear", kind="linear", executed=executed,
                       params=(param("weight", ROLE_WEIGHT, w, np.zeros_like(w)),))


def test_nd304_unused_and_detached_layers_warn(rng):
    x, y = blobs(rng)
    snap = mlp(rng, [8, 16, 3]).snapshot(x, y)
    snap = replace(snap, layers=(*snap.layers, _zero_grad_layer("aux_head", False, rng)))
    [f] = run("ND304", snap)
    assert f.severity == Severity.WARNING and f.layer == "aux_head" and "never ran" in f.message
    snap2 = replace(snap, layers=(_zero_grad_layer("encoder", True, rng), *snap.layers[:-1]))
    [g] = run("ND304", snap2)
    assert g.layer == "encoder" and ".detach()" in g.message
    assert "model.encoder.requires_grad_(False)" in g.snippet


def test_nd304_zero_head_is_explained_not_warned(rng):
    x, y = blobs(rng)
    net = mlp(rng, [8, 32, 32, 3])
    net.layers[-1][1]["w"] = np.zeros((3, 32))
    [f] = run("ND304", net.snapshot(x, y))
    assert f.severity == Severity.INFO and f.evidence["cause"] == "zero-head:fc3"
    assert f.evidence["layers"] == ["fc1", "fc2"]


def test_nd304_zero_initialized_residual_scale_is_deliberate(rng):
    x, y = blobs(rng)
    # the head still gets gradient (in a real residual block through the skip path; here through BN's shift)
    net = Net().linear(he(rng, 16, 8)).bn(16).act("relu").linear(he(rng, 16, 16)).bn(16, gamma=0.0, beta=0.5) \
        .act("relu").linear(he(rng, 3, 16))
    [f] = run("ND304", net.snapshot(x, y, residual=True))
    assert f.severity == Severity.INFO and f.evidence["cause"] == "zero-scale"
    assert "`bn2`" in f.message and f.evidence["layers"] == ["fc1", "fc2"]


def test_nd304_single_unit_softmax_zeroes_every_gradient(rng):
    x = rng.normal(0, 1, (64, 4))
    y = (x[:, 0] > 0).astype(float)[:, None]
    net = mlp(rng, [4, 8, 8, 1], head_act="softmax")
    loss = LossInfo(name="BCELoss", expects="probabilities", value=0.0)
    [f] = run("ND304", net.snapshot(x, y, loss="mse", loss_info=loss))
    assert f.severity == Severity.INFO and f.evidence["cause"] == "softmax-single-unit" and "ND503" in f.message


def test_nd304_fully_dead_relu_layer_is_the_cause(rng):
    x, y = blobs(rng)
    net = Net().linear(he(rng, 16, 8)).act("relu").linear(he(rng, 16, 16), b=np.full(16, -50.0)).act("relu") \
        .linear(he(rng, 3, 16))
    found = run("ND304", net.snapshot(x, y))
    assert [f.evidence["cause"] for f in found] == ["dead:act2", "zero-input:act2"]
    assert all(f.severity == Severity.WARNING for f in found)
    assert found[0].evidence["layers"] == ["fc1", "fc2"]  # below the dead layer
    assert found[1].evidence["layers"] == ["fc3"] and "input is all zeros" in found[1].message  # fed zeros by it


def test_nd304_zero_hidden_layer_explains_the_head_downstream(rng):
    x, y = blobs(rng)
    net = Net().linear(he(rng, 16, 8)).act("relu").linear(np.zeros((16, 16))).act("relu").linear(he(rng, 3, 16))
    found = run("ND304", net.snapshot(x, y))
    assert {f.evidence["cause"] for f in found} == {"zero-weights:fc2", "zero-input:fc2"}
    assert all(f.severity == Severity.INFO for f in found)


def test_nd304_healthy_is_silent(rng):
    x, y = blobs(rng)
    assert run("ND304", mlp(rng, [8, 16, 16, 3]).snapshot(x, y)) == []


def test_nd304_probability_loss_clipping_relu_outputs(rng):
    x = rng.normal(0, 50, (64, 4))  # raw inputs push the ReLU output far above 1
    y = (x[:, 0] > 0).astype(float)[:, None]
    net = Net().linear(np.abs(he(rng, 8, 4))).act("relu").linear(np.abs(he(rng, 1, 8))).act("relu")
    snap = net.snapshot(x, y, loss="mse")
    # what Keras' binary_crossentropy does with outputs > 1: clip, so every gradient is exactly zero
    zero_grads = []
    for r in snap.layers:
        zero_grads.append(replace(r, params=tuple(replace(p, grad=stats(np.zeros(p.stats.shape), None))
                                                  for p in r.params)))
    snap = replace(snap, layers=tuple(zero_grads),
                   loss=LossInfo(name="binary_crossentropy", expects="probabilities", from_logits=False, value=8.0))
    [f] = run("ND304", snap)
    assert f.evidence["cause"] == "clipped-probabilities" and f.severity == Severity.INFO and "ND503" in f.message
