"""ND501-ND504 on hand-built snapshots."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from _factory import Net, blobs, find, he, mlp, run, stats

from netdoctor.findings import Severity
from netdoctor.snapshot import LossInfo


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(4)


@pytest.fixture
def data(rng):
    return blobs(rng, n=64)


def test_nd501_dropout_feeding_batchnorm(rng, data):
    net = Net().linear(he(rng, 32, 8)).act("relu").dropout(0.5).bn(32).linear(he(rng, 3, 32))
    [f] = run("ND501", net.snapshot(*data))
    assert f.severity == Severity.WARNING and f.layer == "drop1"
    assert "`drop1` (Dropout, p=0.5) feeds `bn1`" in f.message and f.evidence["variance_shift"] == 2.0
    assert "nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5)" in f.snippet
    keras = run("ND501", net.snapshot(*data, framework="keras"))[0]
    assert "layers.Dropout(0.5)" in keras.snippet and keras.snippet.index("BatchNormalization") < keras.snippet.index("Dropout")


def test_nd501_through_an_activation(rng, data):
    net = Net().linear(he(rng, 32, 8)).dropout(0.3).act("relu").bn(32).linear(he(rng, 3, 32))
    [f] = run("ND501", net.snapshot(*data))
    assert f.evidence["batchnorm"] == "bn1"


def test_nd501_accepted_placements_and_mere_co_occurrence(rng, data):
    bn_then_drop = Net().linear(he(rng, 32, 8)).bn(32).act("relu").dropout(0.5).linear(he(rng, 3, 32))
    assert run("ND501", bn_then_drop.snapshot(*data)) == []
    # dropout, then a weight layer, then BN: the dense layer re-mixes; not the adjacency
    apart = Net().linear(he(rng, 32, 8)).act("relu").dropout(0.5).linear(he(rng, 16, 32)).bn(16).act("relu") \
        .linear(he(rng, 3, 16))
    assert run("ND501", apart.snapshot(*data)) == []
    no_op = Net().linear(he(rng, 32, 8)).dropout(0.0).bn(32).linear(he(rng, 3, 32))
    assert run("ND501", no_op.snapshot(*data)) == []


def test_nd501_traced_dataflow_wins_over_execution_order(rng, data):
    net = Net().linear(he(rng, 32, 8)).act("relu").dropout(0.5).bn(32).linear(he(rng, 3, 32))
    snap = net.snapshot(*data)
    bn = find(snap, "bn1")
    snap = replace(snap, layers=tuple(replace(bn, inputs_from=("act1",)) if r is bn else r for r in snap.layers))
    assert run("ND501", snap) == []  # the BN consumes act1, the dropout output goes elsewhere


def test_nd502_deep_plain_stack(rng, data):
    [f] = run("ND502", mlp(rng, [8] + [16] * 9 + [3]).snapshot(*data))
    assert f.severity == Severity.WARNING and f.evidence["depth"] == 10
    assert "from `fc1` to `fc10`" in f.message and "limit: 7 in a row" in f.message
    assert "nn.Linear(8, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU()" in f.snippet


def test_nd502_normalized_residual_shallow_and_selu_stacks(rng, data):
    bn = Net()
    for a, b in zip([8] + [16] * 8, [16] * 9):
        bn.linear(he(rng, b, a)).bn(b).act("relu")
    bn.linear(he(rng, 3, 16))
    assert run("ND502", bn.snapshot(*data)) == []
    assert run("ND502", mlp(rng, [8] + [16] * 9 + [3]).snapshot(*data, residual=True)) == []
    assert run("ND502", mlp(rng, [8] + [16] * 4 + [3]).snapshot(*data)) == []
    snap = mlp(rng, [8] + [16] * 9 + [3]).snapshot(*data)
    selu = replace(snap, layers=tuple(replace(r, activation="selu") if r.kind == "linear" else r for r in snap.layers))
    assert run("ND502", selu) == []


def _classifier(rng, head_act=None, units=3):
    return mlp(rng, [8, 16, units], head_act=head_act)


@pytest.mark.parametrize("head_act, loss, expects, from_logits, phrase", [
    ("softmax", "CrossEntropyLoss", "logits", None, "log-softmax again"),
    ("sigmoid", "BCEWithLogitsLoss", "logits", None, "applies the sigmoid again"),
    ("softmax", "categorical_crossentropy", "logits", True, "log-softmax again"),
    (None, "BCELoss", "probabilities", None, "raw logits go into BCELoss"),
    (None, "categorical_crossentropy", "probabilities", False, "raw logits"),
    ("relu", "categorical_crossentropy", "probabilities", False, "relu outputs"),
    ("sigmoid", "categorical_crossentropy", "probabilities", False, "independent sigmoid outputs"),
    ("softmax", "NLLLoss", "log_probabilities", None, "expects log-probabilities"),
])
def test_nd503_mismatches(rng, data, head_act, loss, expects, from_logits, phrase):
    info = LossInfo(name=loss, expects=expects, from_logits=from_logits, value=1.0)
    snap = _classifier(rng, head_act).snapshot(*data, loss="ce", loss_info=info)
    [f] = run("ND503", snap)
    assert f.severity == Severity.ERROR and phrase in f.message and f.layer == "fc2"
    assert f.snippet


def test_nd503_keras_snippets_fix_from_logits(rng, data):
    info = LossInfo(name="sparse_categorical_crossentropy", expects="logits", from_logits=True, value=1.0)
    [f] = run("ND503", _classifier(rng, "softmax").snapshot(*data, loss_info=info, framework="keras"))
    assert "keras.losses.SparseCategoricalCrossentropy(from_logits=False)" in f.snippet


def test_nd503_single_unit_softmax_with_any_loss(rng, data):
    info = LossInfo(name="mse", expects="any", value=0.0, source="default")
    x, y = data
    yb = (y == 0).astype(float)[:, None]
    [f] = run("ND503", _classifier(rng, "softmax", units=1).snapshot(x, yb, loss="mse", loss_info=info))
    assert "single unit" in f.message and "BCEWithLogitsLoss" in f.snippet


@pytest.mark.parametrize("head_act, loss, expects, from_logits", [
    (None, "CrossEntropyLoss", "logits", None),
    ("softmax", "categorical_crossentropy", "probabilities", False),
    ("sigmoid", "BCELoss", "probabilities", None),
    ("sigmoid", "binary_crossentropy", "probabilities", False),
    ("log_softmax", "NLLLoss", "log_probabilities", None),
    ("log_softmax", "CrossEntropyLoss", "logits", None),  # log_softmax is idempotent under log_softmax
    (None, "MSELoss", "any", None),
])
def test_nd503_correct_pairings(rng, data, head_act, loss, expects, from_logits):
    info = LossInfo(name=loss, expects=expects, from_logits=from_logits, value=1.0)
    snap = _classifier(rng, None).snapshot(*data, loss_info=info, final_activation=head_act)
    if head_act == "sigmoid":
        snap = _classifier(rng, "sigmoid").snapshot(*data, loss_info=info)
    assert run("ND503", snap) == []


def test_nd503_only_judges_user_losses_and_needs_real_activation_evidence(rng, data):
    info = LossInfo(name="CrossEntropyLoss", expects="logits", value=1.0, source="default")
    assert run("ND503", _classifier(rng, "softmax").snapshot(*data, loss_info=info)) == []
    # a zero-initialized head outputs zeros: in [0, 1] but not a sigmoid
    net = _classifier(rng)
    net.layers[-1][1]["w"] = np.zeros((3, 16))
    user = LossInfo(name="CrossEntropyLoss", expects="logits", value=1.1)
    snap = net.snapshot(*data, loss_info=user)
    assert snap.output.looks_like == "sigmoid"
    assert run("ND503", snap) == []


def _with_targets(snap, y, kind):
    return replace(snap, data=replace(snap.data, targets=stats(y), target_kind=kind))


@pytest.mark.parametrize("loss, fires", [("mse", True), ("binary_crossentropy", True),
                                          ("categorical_crossentropy", False)])
def test_nd503_softmax_for_multi_hot_targets(rng, data, loss, fires):
    # SO 38648195: three labels per sample can be on at once, the softmax sums to 1
    x, _ = data
    y = (rng.uniform(size=(len(x), 3)) < 0.5).astype(float)
    y[0] = [1, 1, 0]
    info = LossInfo(name=loss, expects="any" if loss == "mse" else "probabilities", from_logits=False, value=0.4)
    snap = _with_targets(_classifier(rng, "softmax").snapshot(x, y, loss="mse", loss_info=info), y, "binary")
    found = run("ND503", snap)
    if not fires:  # a categorical cross-entropy on multi-hot rows is a deliberate soft-label objective
        assert found == []
        return
    [f] = found
    assert f.severity == Severity.ERROR and "multi-hot" in f.message and "sums to 1" in f.message
    assert f.evidence["labels_per_sample"] == pytest.approx(y.sum(1).mean())
    assert "BCEWithLogitsLoss" in f.snippet
    one_hot = np.eye(3)[rng.integers(0, 3, len(x))]  # one label per row: the softmax is right
    assert run("ND503", _with_targets(snap, one_hot, "one_hot")) == []


def test_nd503_bounded_output_for_regression_targets_far_outside_its_range(rng):
    # SO 48221692: y = 80 x + 10 regressed through Dense(1, sigmoid)
    x = rng.uniform(-1, 1, (128, 1))
    y = 80 * x + 10 + rng.normal(0, 5, (128, 1))
    info = LossInfo(name="mean_squared_error", expects="any", value=2500.0)
    net = Net().linear(he(rng, 5, 1)).act("sigmoid").linear(he(rng, 1, 5)).act("sigmoid")
    snap = _with_targets(net.snapshot(x, y, loss="mse", loss_info=info), y, "float")
    [f] = run("ND503", snap)
    assert "regression targets span" in f.message and "sigmoid" in f.message and f.evidence["output_range"] == [0, 1]
    assert "linear" in f.recommendation
    # targets scaled into [0, 1] (with a little noise beyond) suit the sigmoid
    scaled = (y - y.min()) / (y.max() - y.min()) * 1.1 - 0.05
    assert run("ND503", _with_targets(snap, scaled, "float")) == []
    # tanh is bounded too; a linear output is not
    tanh = Net().linear(he(rng, 5, 1)).act("tanh").linear(he(rng, 1, 5)).act("tanh")
    assert run("ND503", _with_targets(tanh.snapshot(x, y, loss="mse", loss_info=info), y, "float"))
    linear = Net().linear(he(rng, 5, 1)).act("sigmoid").linear(he(rng, 1, 5))
    assert run("ND503", _with_targets(linear.snapshot(x, y, loss="mse", loss_info=info), y, "float")) == []


def test_nd504_bias_before_batchnorm_is_info(rng, data):
    net = Net().linear(he(rng, 16, 8)).bn(16).act("relu").linear(he(rng, 3, 16))
    [f] = run("ND504", net.snapshot(*data))
    assert f.severity == Severity.INFO and f.layer == "fc1" and "`bn1`" in f.message
    assert f.snippet == "nn.Linear(8, 16, bias=False)"
    keras = run("ND504", net.snapshot(*data, framework="keras"))[0]
    assert "use_bias=False" in keras.snippet and keras.snippet.startswith("layers.Dense(16")


def test_nd504_no_bias_or_activation_in_between(rng, data):
    no_bias = Net().linear(he(rng, 16, 8), b=False).bn(16).act("relu").linear(he(rng, 3, 16))
    assert run("ND504", no_bias.snapshot(*data)) == []
    act_between = Net().linear(he(rng, 16, 8)).act("relu").bn(16).linear(he(rng, 3, 16))
    assert run("ND504", act_between.snapshot(*data)) == []


def test_nd504_many_layers_are_summarized(rng, data):
    net = Net().linear(he(rng, 16, 8)).bn(16).act("relu")
    for _ in range(6):
        net.linear(he(rng, 16, 16)).bn(16).act("relu")
    net.linear(he(rng, 3, 16))
    [f] = run("ND504", net.snapshot(*data))
    assert f.message.startswith("7 layers add a bias") and len(f.evidence["pairs"]) == 7
