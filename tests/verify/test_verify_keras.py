"""--verify on real Keras 3 models: one test per fix family, Sequential and Functional."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers
from verify_helpers import blobs, check, circles, digits, finding, raw_tabular, verified

from netdoctor.verify import NOT_VERIFIED


def test_zero_init_is_reinitialized_and_verified():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(32, activation="relu", name="fc1"),
                              layers.Dense(32, activation="relu", kernel_initializer="zeros", name="fc2"),
                              layers.Dense(3, name="out")])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = blobs()
    report = check(model, x, y)
    v = verified(report, "ND201", "fc2").verification
    assert v["before"]["grad_norm[fc1]"] == 0.0 < v["after"]["grad_norm[fc1]"]
    assert v["after"]["probe_loss"] < v["before"]["probe_loss"]
    assert v["probe"]["optimizer"] == "Adam(lr=0.001)"
    assert v["diff"].splitlines() == [
        '- layers.Dense(32, activation="relu", kernel_initializer="zeros", name="fc2"),',
        '+ layers.Dense(32, activation="relu", kernel_initializer="he_normal", name="fc2"),']
    assert not np.any(model.get_layer("fc2").get_weights()[0])


def test_small_init_scale_is_verified():
    keras.utils.set_random_seed(0)
    small = keras.initializers.RandomUniform(-0.05, 0.05)
    model = keras.Sequential([keras.Input(shape=(2,))] + [layers.Dense(16, activation="relu", kernel_initializer=small,
                                                                       name=f"h{i}") for i in range(3)]
                             + [layers.Dense(1, name="out")])
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x, y = circles()
    report = check(model, x, y, select=["ND203"])
    for f in report.by_code("ND203"):
        v = verified(report, "ND203", f.layer).verification
        assert 0.3 < v["after"][f"variance/reference[{f.layer}]"] < 3.0
        assert 'kernel_initializer="he_normal"' in v["diff"]


def test_vanishing_sigmoid_stack_gets_batchnorm_in_a_functional_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(2,))
    h = inputs
    for i in range(8):
        h = layers.Dense(5, activation="sigmoid", kernel_initializer="he_uniform", name=f"s{i}")(h)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid", name="out")(h))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = circles()
    report = check(model, x, y, select=["ND301", "ND502"])
    v = verified(report, "ND301").verification
    assert v["after"]["relative_grad[s0]"] > 1e3 * v["before"]["relative_grad[s0]"]
    assert v["diff"].splitlines()[:4] == [
        '- layers.Dense(5, activation="sigmoid", kernel_initializer="he_uniform", name="s0"),',
        '+ layers.Dense(5, kernel_initializer="he_uniform", use_bias=False, name="s0"),',
        "+ layers.BatchNormalization(),",
        '+ layers.Activation("sigmoid"),']
    verified(report, "ND502")
    assert len(model.layers) == 10  # input + 9 Dense: the user's model is unchanged


def test_unnormalized_inputs_are_standardized_and_verified():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(30,)), layers.Dense(16, activation="relu", name="dense"),
                              layers.Dense(1, activation="sigmoid", name="out")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = raw_tabular()
    report = check(model, x, y.astype("float32")[:, None], select=["ND101"])
    v = verified(report, "ND101", "dense").verification
    assert v["after"]["max_feature_rms[dense]"] < 5
    assert v["before"]["max_feature_rms[dense]"] > 100
    assert "+ norm.adapt(x_train)  # per-feature mean and variance" in v["diff"]


def test_dropout_before_batchnorm_is_moved_and_verified():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(64,)), layers.Dense(64, name="dense"),
                              layers.Dropout(0.5, name="drop"), layers.BatchNormalization(name="bn"),
                              layers.Activation("relu", name="act"), layers.Dense(10, activation="softmax", name="out")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = digits()
    report = check(model, x, y, select=["ND501"])
    v = verified(report, "ND501", "drop").verification
    assert v["fix"] == "move `drop` (Dropout) after `act` (Activation)"
    assert v["diff"].splitlines() == ['- layers.Dropout(0.5, name="drop"),', '  layers.Activation("relu", name="act"),',
                                      '+ layers.Dropout(0.5, name="drop"),']


def test_softmax_with_from_logits_switches_the_loss_and_is_verified():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(64,)), layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax", name="out")])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = digits()
    report = check(model, x, y, select=["ND503"])
    v = verified(report, "ND503").verification
    assert v["before"]["output/loss"].endswith("(expects logits)")
    assert v["after"]["output/loss"].endswith("(expects probabilities)")
    assert "from_logits=False" in v["diff"].splitlines()[-1]
    assert model.loss.get_config()["from_logits"] is True


def test_exploding_gradients_reinit_and_clipping_verified():
    keras.utils.set_random_seed(0)
    big = keras.initializers.RandomNormal(stddev=1.0)
    model = keras.Sequential([keras.Input(shape=(64,))]
                             + [layers.Dense(256, activation="relu", kernel_initializer=big) for _ in range(3)]
                             + [layers.Dense(10, kernel_initializer=big)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = digits()
    report = check(model, x, y, select=["ND203", "ND302"])
    v = verified(report, "ND302").verification
    assert v["probe"]["optimizer"] == "SGD(lr=0.01)" and v["probe"]["clip_norm"] > 0
    assert f"global_clipnorm={v['probe']['clip_norm']:g})" in v["diff"]


def test_clipping_alone_does_not_verify_when_the_cause_is_the_target_scale():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(32, activation="relu"), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x, _ = blobs()
    report = check(model, x, (1e4 * x[:, :1]).astype("float32"), select=["ND302"])
    v = finding(report, "ND302").verification
    assert v["verdict"] == NOT_VERIFIED and "ND302 still fires on the fixed copy" in v["reason"]
