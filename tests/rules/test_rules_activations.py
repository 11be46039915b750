"""ND401-ND403 on snapshots with real numpy activations."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _factory import Net, blobs, find, he, mlp, run

from netdoctor.findings import Severity


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_nd401_negative_biases_kill_a_layer(rng):
    x, y = blobs(rng)
    net = Net().linear(he(rng, 32, 8)).act("relu").linear(he(rng, 32, 32), b=np.full(32, -5.0)).act("relu") \
        .linear(he(rng, 3, 32))
    [f] = run("ND401", net.snapshot(x, y))
    assert f.severity == Severity.WARNING and f.layer == "act2"
    assert f.message.startswith("91% of units in `act2` never fired on 256 samples (29 of 32; limit 50%)")
    assert "biases of `fc2`" in f.recommendation and "nn.init.zeros_(model.fc2.bias)" in f.snippet
    keras = run("ND401", replace(net.snapshot(x, y), framework="keras"))[0]
    assert 'bias_initializer="zeros"' in keras.snippet


def test_nd401_leaky_relu_fix_when_biases_are_fine(rng):
    x, y = blobs(rng)
    snap = Net().linear(he(rng, 32, 8)).act("relu").linear(-np.abs(he(rng, 32, 32))).act("relu") \
        .linear(he(rng, 3, 32)).snapshot(x, y)
    [f] = run("ND401", snap)  # non-negative inputs times all-negative weights
    assert "LeakyReLU" in f.recommendation
    # the factory's activations are recorded as calls in forward() (type_name "relu"), so the fix is a call
    assert "x = F.leaky_relu(x, 0.01)  # in the model's forward(), in place of the relu(...) call" in f.snippet
    assert f.evidence["dead_frac"] == 1.0


def test_nd401_healthy_layers_tiny_batches_and_zero_inputs_are_silent(rng):
    x, y = blobs(rng)
    assert run("ND401", mlp(rng, [8, 64, 64, 3]).snapshot(x, y)) == []
    dead = Net().linear(he(rng, 32, 8), b=np.full(32, -5.0)).act("relu").linear(he(rng, 3, 32))
    assert run("ND401", dead.snapshot(x[:8], y[:8])) == []  # 8 samples: too few to call a unit dead
    assert run("ND401", dead.snapshot(x, y)) != []
    zero_in = Net().linear(np.zeros((16, 8))).act("relu").linear(he(rng, 3, 16))
    assert run("ND401", zero_in.snapshot(x, y)) == []  # zero weights: ND201's finding, not dead units


def test_nd401_smooth_activations_cannot_die(rng):
    x, y = blobs(rng)
    snap = Net().linear(he(rng, 16, 8), b=np.full(16, -9.0)).act("relu").linear(he(rng, 3, 16)).snapshot(x, y)
    act = find(snap, "act1")
    gelu = replace(act, activation="gelu", type_name="GELU")
    assert run("ND401", replace(snap, layers=(snap.layers[0], gelu, snap.layers[2]))) == []


def test_nd402_unscaled_inputs_saturate_sigmoid_units(rng):
    x = np.linspace(-100, 100, 400)[:, None]
    y = x ** 4 / 1e8
    net = Net().linear(rng.uniform(-0.34, 0.34, (50, 1))).act("sigmoid").linear(he(rng, 50, 50)).act("relu") \
        .linear(he(rng, 1, 50))
    [f] = run("ND402", net.snapshot(x, y, loss="mse"))
    assert f.severity == Severity.WARNING and f.layer == "act1"
    assert f.evidence["saturated_frac"] > 0.5 and "limit 50% of units" in f.message
    assert "Standardize the inputs of `fc1`" in f.recommendation


def test_nd402_healthy_tanh_and_confident_outputs(rng):
    x, y = blobs(rng)
    glorot = lambda r, o, i: r.uniform(-np.sqrt(6 / (i + o)), np.sqrt(6 / (i + o)), (o, i))  # noqa: E731
    assert run("ND402", mlp(rng, [8, 32, 32, 3], act="tanh", init=glorot).snapshot(x, y)) == []
    yb = (x[:, 0] > 0).astype(float)[:, None]
    out = Net().linear(he(rng, 16, 8)).act("relu").linear(rng.normal(0, 3, (1, 16))).act("sigmoid")
    [f] = run("ND402", out.snapshot(x, yb, loss="mse"))
    assert f.severity == Severity.INFO and f.evidence["output_activation"] is True


def test_nd403_tiny_init_shrinks_the_signal_geometrically(rng):
    x, y = blobs(rng)
    net = mlp(rng, [8] + [64] * 10 + [3], init=lambda r, o, i: r.uniform(-0.05, 0.05, (o, i)))
    [f] = run("ND403", net.snapshot(x, y))
    assert f.severity == Severity.WARNING and "shrinks" in f.message
    assert f.evidence["per_layer"] < 0.3 and f.evidence["total_change"] < 1e-4
    assert f.evidence["layers"] == 10 and "kaiming_normal_" in f.snippet


def test_nd403_large_init_grows(rng):
    x, y = blobs(rng)
    net = mlp(rng, [8] + [64] * 10 + [3], init=lambda r, o, i: r.normal(0, 2 * np.sqrt(2 / i), (o, i)))
    [f] = run("ND403", net.snapshot(x, y))
    assert "grows" in f.message and f.evidence["total_change"] > 100


def test_nd403_healthy_stacks_normalized_and_residual_networks(rng):
    x, y = blobs(rng)
    assert run("ND403", mlp(rng, [8] + [64] * 10 + [3]).snapshot(x, y)) == []  # He
    torch_default = lambda r, o, i: r.uniform(-1 / np.sqrt(i), 1 / np.sqrt(i), (o, i))  # noqa: E731
    net = Net()
    for i, (a, b) in enumerate(zip([8] + [64] * 9, [64] * 10)):
        net.linear(torch_default(rng, b, a), b=rng.uniform(-1 / np.sqrt(a), 1 / np.sqrt(a), b)).act("relu")
    net.linear(torch_default(rng, 3, 64))
    assert run("ND403", net.snapshot(x, y)) == []  # PyTorch's default: its biases keep a floor
    tiny = lambda r, o, i: r.uniform(-0.05, 0.05, (o, i))  # noqa: E731
    bn = Net()
    for a, b in zip([8] + [64] * 9, [64] * 10):
        bn.linear(tiny(rng, b, a)).bn(b).act("relu")
    bn.linear(he(rng, 3, 64))
    assert run("ND403", bn.snapshot(x, y)) == []  # BatchNorm resets the scale after every layer
    plain = mlp(rng, [8] + [64] * 10 + [3], init=tiny)
    assert run("ND403", plain.snapshot(x, y, residual=True)) == []
