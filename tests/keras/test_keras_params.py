"""Parameter records: roles, fans, units, duplicate units, initializers, gradients."""

from __future__ import annotations

import numpy as np
import pytest
from keras_helpers import L, by_name, collect, keras, lecture_data, lecture_model, rng

from netdoctor.adapters.keras.kinds import compute_fans
from netdoctor.snapshot import (
    ROLE_BIAS,
    ROLE_BUFFER,
    ROLE_EMBEDDING,
    ROLE_NORM_SCALE,
    ROLE_NORM_SHIFT,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
    Need,
)


def _keras_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    from keras.src.initializers.random_initializers import compute_fans as keras_compute_fans

    fi, fo = keras_compute_fans(shape)
    return int(fi), int(fo)


@pytest.mark.parametrize("shape", [(7,), (5, 3), (3, 3, 4, 8), (3, 3, 4, 1), (2, 5, 4, 6, 2), (16, 2, 8)])
def test_fans_match_keras_variance_scaling(shape: tuple[int, ...]) -> None:
    assert compute_fans(shape) == _keras_fans(shape)


def test_roles_fans_units_initializers() -> None:
    x, y = lecture_data()
    model = lecture_model()
    recs = by_name(collect(model, x, y))
    k = recs["d2"].weight
    assert (k.name, k.role, k.fan_in, k.fan_out, k.units) == ("kernel", ROLE_WEIGHT, 10, 10, 10)
    assert k.initializer == "HeNormal" and recs["out"].weight.initializer == "GlorotUniform"
    assert k.duplicate_unit_frac == 0.0 and k.trainable
    kernel = model.get_layer("d2").get_weights()[0]
    assert k.stats.std == pytest.approx(float(kernel.std()), rel=1e-6)
    assert k.stats.l2 == pytest.approx(float(np.linalg.norm(kernel)), rel=1e-6)
    assert recs["d2"].param(ROLE_BIAS).fan_in is None
    roles = {p.name: p.role for p in recs["bn"].params}
    assert roles == {"gamma": ROLE_NORM_SCALE, "beta": ROLE_NORM_SHIFT, "moving_mean": ROLE_BUFFER,
                     "moving_variance": ROLE_BUFFER}
    buffers = [p for p in recs["bn"].params if p.role == ROLE_BUFFER]
    assert all(not p.trainable and p.grad is None for p in buffers)


def test_conv_depthwise_separable_units_and_fans() -> None:
    inp = keras.Input((8, 8, 4))
    h = L.Conv2D(6, 3, name="conv")(inp)
    h = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(h)
    h = L.SeparableConv2D(5, 1, name="sep")(h)
    h = L.Conv2DTranspose(3, 2, name="up")(h)
    out = L.Dense(2, name="head")(L.Flatten()(h))
    recs = by_name(collect(keras.Model(inp, out), rng().normal(size=(2, 8, 8, 4)), rng().normal(size=(2, 2))))
    conv = recs["conv"].weight
    assert (conv.fan_in, conv.fan_out, conv.units) == (36, 54, 6)
    dw = recs["dw"].weight
    assert dw.stats.shape == (3, 3, 6, 2) and dw.units == 12 and (dw.fan_in, dw.fan_out) == (54, 18)
    assert recs["dw"].attrs["depthwise"] is True
    sep = [p for p in recs["sep"].params if p.role == ROLE_WEIGHT]
    assert [p.name for p in sep] == ["depthwise_kernel", "pointwise_kernel"] and sep[1].units == 5
    up = recs["up"].weight
    assert up.stats.shape == (2, 2, 3, 5) and up.units == 3


def test_constant_and_duplicate_units() -> None:
    inp = keras.Input((4,))
    h = L.Dense(8, kernel_initializer=keras.initializers.Constant(0.3), name="const")(inp)
    h = L.Dense(6, kernel_initializer="zeros", name="zero")(h)
    out = L.Dense(2, name="ok")(h)
    model = keras.Model(inp, out)
    w = model.get_layer("ok").get_weights()
    w[0][:, 1] = w[0][:, 0]  # two identical output columns
    model.get_layer("ok").set_weights(w)
    recs = by_name(collect(model, rng().normal(size=(8, 4)), rng().normal(size=(8, 2))))
    assert recs["const"].weight.duplicate_unit_frac == pytest.approx(7 / 8)
    assert recs["const"].weight.initializer == "Constant"
    assert recs["zero"].weight.duplicate_unit_frac == pytest.approx(5 / 6)
    assert recs["zero"].weight.stats.frac_zero == 1.0 and recs["zero"].weight.initializer == "Zeros"
    assert recs["ok"].weight.duplicate_unit_frac == pytest.approx(1 / 2)


def test_gradients_match_a_plain_tape() -> None:
    import tensorflow as tf

    x, y = lecture_data()
    model = lecture_model()
    loss = keras.losses.MeanSquaredError()
    snap = collect(model, x, y, loss_fn=loss)
    with tf.GradientTape() as tape:
        value = loss(y, model(x, training=True))
    grads = tape.gradient(value, model.trainable_variables)
    want = {v.path: float(np.linalg.norm(g.numpy())) for v, g in zip(model.trainable_variables, grads)}
    got = {f"{r.name}/{p.name}": p.grad.l2 for r in snap.layers for p in r.params if p.grad is not None}
    assert set(got) == {k.split("/", 1)[1] for k in want}
    for path, norm in want.items():
        assert got[path.split("/", 1)[1]] == pytest.approx(norm, rel=1e-4)
    assert snap.loss.value == pytest.approx(float(value), rel=1e-5)


def test_frozen_and_unreached_weights() -> None:
    inp = keras.Input((4,))
    frozen = L.Dense(5, name="frozen")
    frozen.trainable = False
    h = frozen(inp)
    cut = L.Dense(5, name="cut")(h)
    h2 = L.Lambda(lambda t: keras.ops.stop_gradient(t), name="stop")(cut)
    out = L.Dense(1, name="head")(h2)
    model = keras.Model(inp, out)
    recs = by_name(collect(model, rng().normal(size=(8, 4)), rng().normal(size=(8, 1))))
    fk = recs["frozen"].weight
    assert not fk.trainable and fk.grad is None and fk.role == ROLE_WEIGHT
    ck = recs["cut"].weight
    assert ck.trainable and ck.grad is not None and ck.grad.l2 == 0.0 and ck.grad.frac_zero == 1.0
    assert recs["head"].weight.grad.l2 > 0
    assert model.get_layer("frozen").trainable is False


def test_embedding_lstm_bidirectional_attention_params() -> None:
    inp = keras.Input((10,), dtype="int32")
    e = L.Embedding(50, 8, name="emb")(inp)
    h = L.Bidirectional(L.LSTM(6, return_sequences=True), name="bi")(e)
    a = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(h, h)
    g = L.GRU(5, name="gru")(a)
    out = L.Dense(3, name="head")(g)
    snap = collect(keras.Model(inp, out), rng().integers(0, 50, (8, 10)), rng().integers(0, 3, (8,)))
    recs = by_name(snap)
    emb = recs["emb"].weight
    assert emb.role == ROLE_EMBEDDING and emb.units == 50 and emb.initializer == "RandomUniform"
    bi = recs["bi"]
    assert bi.kind == "rnn" and bi.attrs["bidirectional"] and bi.attrs["units"] == 6
    roles = [p.role for p in bi.params]
    assert roles.count(ROLE_WEIGHT) == 2 and roles.count(ROLE_RECURRENT) == 2
    rec = bi.param(ROLE_RECURRENT)
    assert rec.initializer == "Orthogonal" and rec.units == 24 and rec.fan_in == 6
    mha = recs["mha"]
    assert mha.kind == "attention" and mha.attrs["num_heads"] == 2
    names = [p.name for p in mha.params if p.role == ROLE_WEIGHT]
    assert names == ["query/kernel", "key/kernel", "value/kernel", "attention_output/kernel"]
    assert mha.params[0].units == 8 and mha.params[0].fan_in == _keras_fans((12, 2, 4))[0]
    assert "mha/softmax" not in recs and "mha/query" not in recs
    assert recs["gru"].weight.grad.l2 > 0


def test_host_value_reads_a_variable_once_and_is_not_touched_by_a_later_assignment() -> None:
    from netdoctor.adapters.keras.records import host_value

    dense = L.Dense(7)
    dense.build((None, 5))
    v = dense.kernel
    want = np.array(v.numpy(), copy=True)
    got = host_value(v)
    np.testing.assert_array_equal(got, want)
    v.assign(v.numpy() + 1.0)  # the view is of the read, not of the variable's buffer
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(host_value(v), want + 1.0)
    if keras.backend.backend() == "tensorflow":
        assert not got.flags.writeable  # a view of TensorFlow's buffer: nothing may write into it


def test_gradients_are_norms_unless_a_rule_needs_their_moments() -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), L.Dense(16, activation="relu", name="d1"), L.Dense(3, name="out")])
    x, y = rng(1).normal(size=(32, 6)).astype("float32"), rng(2).integers(0, 3, size=(32,))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    full = collect(model, x, y, loss_fn=loss)
    lean = collect(model, x, y, loss_fn=loss, needs=frozenset(Need) - {Need.GRADIENT_MOMENTS})
    g_full, g_lean = by_name(full)["d1"].weight.grad, by_name(lean)["d1"].weight.grad
    assert Need.GRADIENT_MOMENTS in full.collected and Need.GRADIENT_MOMENTS not in lean.collected
    assert g_full.l2 > 0 and g_lean.l2 == pytest.approx(g_full.l2, rel=1e-5) and g_lean.frac_nonfinite == 0
    assert np.isfinite(g_full.abs_mean) and g_full.abs_mean > 0 and 0 <= g_full.frac_zero < 1
    assert all(np.isnan(getattr(g_lean, f)) for f in ("mean", "std", "min", "max", "abs_max", "abs_mean", "frac_zero"))


@pytest.mark.parametrize("sparsity", [False, True])
def test_abs_mean_and_frac_zero_of_large_tensors_are_measured_only_when_a_rule_needs_them(sparsity: bool) -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((200,)), L.Dense(128, name="d1"), L.ReLU(name="act"), L.Dense(4, name="out")])
    x, y = rng(1).normal(size=(256, 200)).astype("float32"), rng(2).integers(0, 4, size=(256,))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    snap = collect(model, x, y, loss_fn=loss, needs=frozenset(Need) if sparsity else frozenset(Need) - {Need.SPARSITY})
    assert (Need.SPARSITY in snap.collected) == sparsity and Need.SPARSITY not in snap.missing
    recs = by_name(snap)
    w, hidden, relu = recs["d1"].weight.stats, recs["d1"].output, recs["act"].output
    kernel = np.asarray(model.get_layer("d1").kernel.numpy(), dtype=np.float64)
    z = x.astype(np.float64) @ kernel + np.asarray(model.get_layer("d1").bias.numpy())
    assert w.std == pytest.approx(float(kernel.std()), rel=1e-4)  # the moments either way
    assert hidden.std == pytest.approx(float(z.std()), rel=1e-4)
    # a ReLU's output: exact either way (its positives per unit give both)
    assert relu.abs_mean == pytest.approx(float(np.maximum(z, 0).mean()), rel=1e-4)
    assert relu.frac_zero == pytest.approx(float((z <= 0).mean()), abs=1e-7)
    large = [w, hidden, snap.data.inputs[next(iter(snap.data.inputs))]]  # signed, more than 16384 entries
    if sparsity:
        assert w.abs_mean == pytest.approx(float(np.abs(kernel).mean()), rel=3e-2) and w.frac_zero == 0.0
        assert hidden.abs_mean == pytest.approx(float(np.abs(z).mean()), rel=3e-2)
    else:  # not measured: NaN, never a number that reads as dense or sparse
        assert all(np.isnan(st.abs_mean) and np.isnan(st.frac_zero) for st in large)
