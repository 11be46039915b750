"""Layer records of traced Keras graphs: order, kinds, activations, entry, data flow."""

from __future__ import annotations

import numpy as np
import pytest
from keras_helpers import ALL, L, by_name, collect, keras, lecture_data, lecture_model, rng, small_cnn

from netdoctor.snapshot import KIND_ACTIVATION, KIND_BATCHNORM, KIND_CONV, KIND_LINEAR, Need


def test_lecture_model_records_in_order_with_split_activations() -> None:
    x, y = lecture_data()
    snap = collect(lecture_model(), x, y)
    assert [r.name for r in snap.layers] == ["d1", "d1/relu", "bn", "d2", "d2/relu", "out"]
    recs = by_name(snap)
    assert [recs[n].kind for n in ("d1", "d1/relu", "bn", "out")] == [KIND_LINEAR, KIND_ACTIVATION, KIND_BATCHNORM,
                                                                       KIND_LINEAR]
    assert recs["d1"].activation == "relu" and recs["out"].activation == "linear"
    assert recs["d1/relu"].inputs_from == ("d1",) and recs["d1/relu"].type_name == "relu"
    assert recs["bn"].inputs_from == ("d1/relu",)
    assert [recs[n].depth for n in ("d1", "d2", "out")] == [0, 1, 2]
    assert recs["d1"].entry and recs["d1"].consumes_model_input
    assert not recs["d2"].entry and not recs["out"].entry
    assert recs["d1"].attrs["norm_after"] is True and recs["d2"].attrs["norm_after"] is False
    assert recs["d1"].attrs["units"] == 10 and recs["d1"].attrs["use_bias"] is True
    assert snap.residual is False
    assert snap.output.final_layer == "out" and snap.output.final_activation is None
    assert snap.output.looks_like == "logits"


def test_weight_layer_output_is_the_preactivation() -> None:
    x, y = lecture_data(64)
    model = lecture_model()
    snap = collect(model, x, y)
    d1 = by_name(snap)["d1"]
    w, b = (np.asarray(v) for v in model.get_layer("d1").get_weights())
    z = x @ w + b
    assert d1.output.min == pytest.approx(float(z.min()), rel=1e-5)
    assert d1.output.mean == pytest.approx(float(z.mean()), rel=1e-4, abs=1e-6)
    act = by_name(snap)["d1/relu"]
    assert act.input is d1.output
    assert act.output.min == 0.0 and act.output.max == pytest.approx(float(np.maximum(z, 0).max()), rel=1e-5)
    np.testing.assert_allclose(act.unit_active, (z > 0).mean(axis=0))
    assert d1.input.unit_mean is not None and d1.input.unit_mean[0] == pytest.approx(float(x.mean()), rel=1e-5)
    d2 = by_name(snap)["d2"]  # per-unit vectors only where ND101 reads them: the entry layer's input (as in torch)
    assert d2.input is by_name(snap)["bn"].output and d2.input.unit_mean is None
    assert d2.input.mean == pytest.approx(float(by_name(snap)["bn"].output.mean))
    assert by_name(snap)["d1/relu"].output.unit_mean is None


class ScaledDense(L.Dense):
    """A Dense whose own ``call`` scales the kernel (as weight-normalized layers do) before its activation."""

    def call(self, inputs, training=None):
        return self.activation(keras.ops.matmul(inputs, self.kernel * 3.0) + self.bias)


def test_fused_preactivation_is_what_the_layer_computed() -> None:
    """The pre-activation of a fused weight layer is the tensor the layer handed its activation
    (captured during the call), not a recomputation from its kernel; the layer is left as it was."""
    x, y = lecture_data(64)
    inp = keras.Input((1,))
    h = ScaledDense(10, activation="tanh", name="d1")(inp)
    model = keras.Model(inp, L.Dense(1, name="out")(h))
    act = model.get_layer("d1").activation
    before = dict(model.get_layer("d1").__dict__)
    snap = collect(model, x, y)
    w, b = (np.asarray(v) for v in model.get_layer("d1").get_weights())
    z = x @ (3.0 * w) + b
    d1 = by_name(snap)["d1"]
    assert d1.output.max == pytest.approx(float(z.max()), rel=1e-5)  # the recomputation gave x @ w + b
    assert d1.output.std == pytest.approx(float(z.std()), rel=1e-4)
    assert by_name(snap)["d1/tanh"].input is d1.output
    assert model.get_layer("d1").activation is act and model.get_layer("d1").__dict__ == before


def test_activation_looks_through_norm_dropout_and_merge() -> None:
    inp = keras.Input((8, 8, 3))
    a = L.Conv2D(4, 3, padding="same", name="c1")(inp)
    a = L.BatchNormalization(name="bn")(a)
    a = L.Activation("relu", name="act")(a)
    b = L.Conv2D(4, 1, name="proj")(a)
    b = L.Dropout(0.1, name="drop")(b)
    s = L.Add(name="add")([a, b])
    s = L.Activation("tanh", name="act2")(s)
    out = L.Dense(2, name="head")(L.GlobalAveragePooling2D(name="gap")(s))
    snap = collect(keras.Model(inp, out), rng().normal(size=(4, 8, 8, 3)))
    recs = by_name(snap)
    assert recs["c1"].activation == "relu" and recs["c1"].attrs["norm_after"] is True
    assert recs["c1"].kind == KIND_CONV and recs["c1"].attrs["kernel_size"] == (3, 3)
    assert recs["proj"].activation == "tanh"  # through Dropout and Add
    assert recs["head"].activation == "linear"
    assert recs["add"].inputs_from == ("act", "drop")
    assert snap.residual is True
    assert recs["act"].unit_active is not None and recs["act2"].unit_saturated is not None


def test_norm_after_sees_batchnorm_behind_a_concatenation_or_pooling() -> None:
    # DenseNet: each block's conv output is concatenated with the block input, and the next block
    # (or the transition) starts with a BatchNorm, which normalizes every channel on its own
    def bn_relu(t, name):
        return L.Activation("relu", name=f"{name}_relu")(L.BatchNormalization(name=f"{name}_bn")(t))

    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", name="stem")(inp)
    for i in (1, 2):
        h = L.Conv2D(4, 3, padding="same", name=f"b{i}_conv")(bn_relu(x, f"b{i}"))
        x = L.Concatenate(name=f"b{i}_concat")([x, h])
    x = L.AveragePooling2D(2, name="pool")(L.Conv2D(4, 1, name="transition")(bn_relu(x, "t")))
    x = L.Concatenate(name="cat")([x, L.Conv2D(4, 1, name="side")(bn_relu(x, "post"))])
    x = L.LayerNormalization(name="ln")(x)
    out = L.Dense(3, name="head")(L.GlobalAveragePooling2D(name="gap")(x))
    recs = by_name(collect(keras.Model(inp, out), rng().normal(size=(4, 8, 8, 3))))
    assert all(recs[n].attrs["norm_after"] is True for n in ("stem", "b1_conv", "b2_conv"))  # concat -> BatchNorm
    assert recs["transition"].attrs["norm_after"] is True  # AveragePooling2D -> BatchNorm
    assert recs["side"].attrs["norm_after"] is False  # a LayerNorm over a concatenation mixes the channels
    assert recs["head"].attrs["norm_after"] is False


def test_conv_model_unit_vectors_on_channels() -> None:
    snap = collect(small_cnn(), rng().normal(size=(5, 12, 12, 3)).astype("float32"), rng().integers(0, 4, (5,)))
    recs = by_name(snap)
    assert recs["conv1"].entry and recs["conv1"].input.unit_mean.shape == (3,)
    assert recs["act1"].unit_active.shape == (8,)
    assert recs["conv2"].activation == "relu" and recs["conv2/relu"].unit_active.shape == (8,)
    assert recs["pool1"].kind == "pool" and recs["pool1"].output.shape == (5, 6, 6, 8)
    assert snap.output.stats.unit_mean.shape == (4,)


def test_functional_dict_inputs_and_two_outputs() -> None:
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    h = L.Concatenate(name="cat")([L.Dense(8, activation="relu", name="da")(a), b])
    cls = L.Dense(2, activation="softmax", name="cls")(h)
    reg = L.Dense(1, name="reg")(h)
    model = keras.Model({"a": a, "b": b}, [cls, reg])
    model.compile(loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
    r = rng()
    x = {"b": r.normal(size=(16, 3)), "a": r.normal(size=(16, 4))}
    y = [r.integers(0, 2, size=(16,)), r.normal(size=(16, 1))]
    snap = collect(model, x, y)
    recs = by_name(snap)
    assert recs["da"].entry and recs["cat"].consumes_model_input
    assert recs["cls"].inputs_from == ("cat",)
    assert snap.output.num_outputs == 2 and snap.output.final_activation == "softmax"
    assert snap.output.final_layer == "cls/softmax" and snap.output.looks_like == "probabilities"
    assert set(snap.data.inputs) == {"a", "b"} and snap.data.inputs["a"].shape == (16, 4)
    assert snap.loss.source == "user" and snap.loss.name == "sparse_categorical_crossentropy"
    # list inputs in model input order give the same forward pass
    model_list = keras.Model([a, b], cls)
    snap_list = collect(model_list, [x["a"], x["b"]], y[0])
    assert by_name(snap_list)["da"].output.mean == pytest.approx(recs["da"].output.mean)


def test_nested_models_are_expanded_with_qualified_names() -> None:
    enc = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="tanh", name="in1"), L.Dense(5, name="in2")],
                           name="enc")
    inp = keras.Input((4,))
    z1 = enc(inp)
    z2 = enc(L.Rescaling(2.0, name="twice")(inp))
    out = L.Dense(1, activation="sigmoid", name="head")(L.Add(name="add")([z1, z2]))
    snap = collect(keras.Model(inp, out), rng().normal(size=(8, 4)), rng().integers(0, 2, (8, 1)))
    recs = by_name(snap)
    assert "enc" not in recs
    assert recs["enc/in1"].calls == 2 and recs["enc/in1/tanh"].calls == 2
    assert recs["enc/in1"].entry and recs["enc/in1"].consumes_model_input
    assert set(recs["enc/in1"].inputs_from) == {"twice"}
    assert set(recs["add"].inputs_from) == {"enc/in2"}
    assert recs["head"].inputs_from == ("add",)
    assert [r.name for r in snap.weight_layers()] == ["enc/in1", "enc/in2", "head"]
    assert snap.output.final_activation == "sigmoid"


def test_custom_layer_is_opaque_but_its_weights_are_listed() -> None:
    class Block(L.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.inner = L.Dense(6, activation="relu", name="inner")
            self.scale = self.add_weight(shape=(6,), initializer="ones", name="scale")

        def call(self, x):
            return self.inner(x) * self.scale

    inp = keras.Input((4,))
    out = L.Dense(2, name="head")(Block(name="block")(inp))
    snap = collect(keras.Model(inp, out), rng().normal(size=(8, 4)), rng().normal(size=(8, 2)))
    recs = by_name(snap)
    assert recs["block"].kind == "other" and [p.name for p in recs["block"].params] == ["scale"]
    inner = recs["block/inner"]
    assert inner.kind == KIND_LINEAR and not inner.executed and inner.activation == "relu"
    assert inner.weight.grad is not None and inner.weight.grad.l2 > 0
    assert not recs["head"].entry  # the opaque block holds weights


def test_subclassed_model_has_weights_and_gradients_but_no_activations() -> None:
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d1 = L.Dense(8, activation="relu")
            self.bn = L.BatchNormalization()
            self.d2 = L.Dense(3, activation="softmax")

        def call(self, x, training=False):
            return self.d2(self.bn(self.d1(x), training=training))

    model = Sub()
    snap = collect(model, rng().normal(size=(16, 4)).astype("float32"), rng().integers(0, 3, (16,)))
    assert Need.ACTIVATIONS not in snap.collected
    assert "subclassed" in snap.missing[Need.ACTIVATIONS] and "Functional API" in snap.missing[Need.ACTIVATIONS]
    assert {Need.WEIGHTS, Need.GRADIENTS} <= snap.collected
    assert [r.kind for r in snap.layers] == ["linear", "activation", "batchnorm", "linear", "activation"]
    assert all(p.grad is not None and p.grad.l2 > 0 for r in snap.layers for p in r.params if p.trainable)
    assert snap.residual is None and snap.output.final_activation == "softmax"
    assert snap.layers[0].output is None


def test_unbuilt_sequential_is_built_from_the_data() -> None:
    model = keras.Sequential([L.Dense(3, activation="relu"), L.Dense(1)])
    snap = collect(model, rng().normal(size=(8, 5)), rng().normal(size=(8, 1)))
    assert model.built and snap.layers[0].weight.stats.shape == (5, 3)
    assert Need.ACTIVATIONS in snap.collected


def test_needs_limit_what_is_collected() -> None:
    model = lecture_model()
    snap = collect(model, needs=frozenset({Need.STRUCTURE, Need.WEIGHTS}))
    assert snap.collected == frozenset({Need.STRUCTURE, Need.WEIGHTS})
    assert snap.loss is None and all(r.output is None for r in snap.layers)
    assert snap.layers[0].weight.grad is None and snap.layers[0].weight.stats.std > 0
    assert snap.output.final_layer == "out"


def test_all_needs_collected_with_real_data() -> None:
    x, y = lecture_data()
    model = lecture_model()
    model.compile(optimizer="adam", loss="mse")
    snap = collect(model, x, y)
    assert snap.collected == ALL - {Need.HISTORY, Need.FIT}  # the monitor and the fit probe collect those
    assert Need.HISTORY in snap.missing
    assert snap.batch_size == 128 and not snap.synthetic_inputs
    assert snap.param_count == sum(int(np.prod(v.shape)) for v in model.weights)
    assert snap.framework == "keras" and "tensorflow" in snap.framework_version


def test_kinds_of_keras_layers_and_functional_ops() -> None:
    inp = keras.Input((6, 4))
    h = L.Rescaling(0.5, name="scale_in")(inp)
    h = L.Conv1D(8, 3, padding="same", name="c1d")(h)
    h = L.LayerNormalization(name="ln")(h)
    h = L.LeakyReLU(negative_slope=0.1, name="leaky")(h)
    h = L.GroupNormalization(groups=2, name="gn")(h)
    h = L.PReLU(name="prelu")(h)
    h = L.SpatialDropout1D(0.2, name="sdrop")(h)
    h = L.EinsumDense("abc,cd->abd", output_shape=(6, 5), bias_axes="d", name="ein")(h)
    h = keras.ops.tanh(h)
    h = L.GaussianDropout(0.1, name="gdrop")(h)
    h = L.Flatten(name="flat")(h)
    out = L.Softmax(name="sm")(L.Dense(3, name="logits")(h))
    snap = collect(keras.Model(inp, out), rng().normal(size=(4, 6, 4)), rng().integers(0, 3, (4,)))
    kinds = {r.name: r.kind for r in snap.layers}
    assert {k: kinds[k] for k in ("scale_in", "c1d", "ln", "leaky", "gn", "prelu", "sdrop", "ein", "gdrop", "sm")} == {
        "scale_in": "preprocess", "c1d": "conv", "ln": "layernorm", "leaky": "activation", "gn": "groupnorm",
        "prelu": "activation", "sdrop": "dropout", "ein": "linear", "gdrop": "dropout", "sm": "activation"}
    recs = by_name(snap)
    tanh = next(r for r in snap.layers if r.kind == KIND_ACTIVATION and r.activation == "tanh")
    assert tanh.inputs_from == ("ein",) and tanh.unit_saturated is not None and tanh.unit_saturated.shape == (5,)
    assert recs["ein"].activation == "tanh" and recs["ein"].weight.units == 5 and recs["ein"].attrs["use_bias"]
    assert recs["c1d"].activation == "leaky_relu" and recs["leaky"].activation == "leaky_relu"
    assert recs["prelu"].param("other") is not None and recs["prelu"].unit_active is not None
    assert recs["sdrop"].attrs["p"] == pytest.approx(0.2) and recs["gn"].attrs["groups"] == 2
    assert recs["ln"].param("norm_scale").name == "gamma"
    assert recs["logits"].activation == "softmax" and snap.output.final_activation == "softmax"
    assert recs["c1d"].entry and not recs["ein"].entry


def test_model_without_trainable_weights_explains_missing_gradients() -> None:
    model = lecture_model()
    model.trainable = False
    x, y = lecture_data(32)
    snap = collect(model, x, y)
    assert Need.GRADIENTS not in snap.collected and "no trainable parameters" in snap.missing[Need.GRADIENTS]
    assert all(p.grad is None and not p.trainable for r in snap.layers for p in r.params)
    assert model.trainable is False and Need.ACTIVATIONS in snap.collected


def test_channels_first_conv_units_are_channels() -> None:
    model = keras.Sequential([
        keras.Input((3, 8, 8)),
        L.Conv2D(4, 3, data_format="channels_first", activation="relu", name="conv"),
        L.Flatten(name="flat"), L.Dense(2, name="head"),
    ])
    x = rng().normal(size=(4, 3, 8, 8)).astype("float32")
    snap = collect(model, x)
    recs = by_name(snap)
    assert recs["conv/relu"].unit_active.shape == (4,) and recs["conv"].input.unit_mean.shape == (3,)
    assert snap.data.inputs["x"].unit_mean.shape == (3,)
    assert recs["conv"].output.shape == (4, 4, 6, 6) and recs["conv"].output.min < 0  # pre-activation


def test_subclassed_model_holding_a_functional_backbone() -> None:
    backbone = keras.Sequential([keras.Input((4,)), L.Dense(6, activation="relu", name="b1"), L.Dropout(0.2, name="bd")],
                                name="backbone")

    class Wrapper(keras.Model):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.head = L.Dense(2, name="head")

        def call(self, x, training=False):
            return self.head(self.backbone(x, training=training))

    snap = collect(Wrapper(), rng().normal(size=(8, 4)).astype("float32"), rng().normal(size=(8, 2)))
    assert [r.name for r in snap.layers] == ["backbone/b1", "backbone/b1/relu", "backbone/bd", "head"]
    assert all(p.grad.l2 > 0 for r in snap.layers for p in r.params if p.role == "weight")


def test_data_only_needs_no_forward_pass() -> None:
    model = lecture_model()
    x = rng().normal(size=(20, 1)) * 100 + 5
    snap = collect(model, x, rng().integers(0, 2, size=(20, 1)), needs=frozenset({Need.DATA}))
    assert snap.collected == frozenset({Need.STRUCTURE, Need.DATA}) and snap.loss is None
    assert snap.data.inputs["x"].dtype == "float64" and snap.data.inputs["x"].unit_std[0] == pytest.approx(
        float(x.std()), rel=1e-6)
    assert snap.data.target_kind == "binary" and snap.data.num_samples == 20
    assert all(r.output is None for r in snap.layers)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_data_stats_of_the_model_input_are_the_probe_pass_measurement(dtype: str, monkeypatch) -> None:
    """The input data's per-feature statistics are those the probe pass took of the very tensor it fed the
    model (not reduced a second time) when the data went in unchanged; float64 data, cast to the model's
    float32, is measured on its own (dtype "float64")."""
    from netdoctor.adapters.keras import io

    model = keras.Sequential([keras.Input((3, 8, 8)), L.Conv2D(4, 3, data_format="channels_first", name="conv"),
                              L.Flatten(), L.Dense(2, name="head")])
    x = rng(3).normal(2.0, 3.0, size=(6, 3, 8, 8)).astype(dtype)
    calls: list[tuple[int, ...]] = []
    real = io.tensor_stats
    monkeypatch.setattr(io, "tensor_stats", lambda t, **kw: calls.append(tuple(t.shape)) or real(t, **kw))
    snap = collect(model, x, rng(4).normal(size=(6, 2)).astype("float32"))
    ins = snap.data.inputs["x"]
    assert calls == ([(6, 2)] if dtype == "float32" else [(6, 3, 8, 8), (6, 2)])  # targets; input only if cast
    assert ins.dtype == dtype and ins.shape == (6, 3, 8, 8)
    assert ins is by_name(snap)["conv"].input if dtype == "float32" else ins.dtype != by_name(snap)["conv"].input.dtype
    np.testing.assert_allclose(ins.unit_mean, x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(ins.unit_std, x.std(axis=(0, 2, 3)), rtol=1e-4)
