"""A check leaves the model, its compiled state and every RNG exactly as they were."""

from __future__ import annotations

import random

import numpy as np
from keras_helpers import L, bn_dropout_model, collect, keras, rng

import netdoctor
from keras.src.backend.common import global_state


class Noise(L.Layer):
    """Draws from Keras' global seed generator (``seed=None``) in training mode."""

    def call(self, x, training=False):
        return x + keras.random.normal(keras.ops.shape(x), stddev=0.1) if training else x


def _model() -> keras.Model:
    base = bn_dropout_model()
    out = base(Noise(name="noise")(base.input))
    model = keras.Model(base.input, out, name="wrapped")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def _state(model: keras.Model) -> dict:
    gen = global_state.get_global_attribute("global_seed_generator")
    return {
        "variables": [np.array(v.numpy(), copy=True) for v in model.variables],
        "paths": [v.path for v in model.variables],
        "optimizer": [np.array(v.numpy(), copy=True) for v in model.optimizer.variables],
        "iterations": int(model.optimizer.iterations.numpy()),
        "compile_loss": (model._compile_loss, model._compile_loss.built, model.loss),
        "trainable": [(layer.name, layer.trainable) for layer in model._flatten_layers()],
        "var_trainable": [v.trainable for v in model.variables],
        "global_gen": (gen, None if gen is None else np.array(gen.state.numpy(), copy=True)),
        "py_random": random.getstate(),
        "np_random": np.random.get_state()[1].copy(),
    }


def _assert_same(a: dict, b: dict) -> None:
    assert a["paths"] == b["paths"]
    for x, y in zip(a["variables"], b["variables"]):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    for x, y in zip(a["optimizer"], b["optimizer"]):
        assert x.tobytes() == y.tobytes()
    assert a["iterations"] == b["iterations"]
    assert a["compile_loss"][0] is b["compile_loss"][0] and a["compile_loss"][1:] == b["compile_loss"][1:]
    assert a["trainable"] == b["trainable"] and a["var_trainable"] == b["var_trainable"]
    assert a["global_gen"][0] is b["global_gen"][0]
    if a["global_gen"][1] is not None:
        assert a["global_gen"][1].tobytes() == b["global_gen"][1].tobytes()
    assert a["py_random"] == b["py_random"]
    assert (a["np_random"] == b["np_random"]).all()


X = rng().normal(size=(32, 6)).astype("float32")
Y = rng(1).integers(0, 3, size=(32,))


def test_check_leaves_bn_stats_seeds_optimizer_and_compiled_loss_untouched() -> None:
    model = _model()
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)  # builds the optimizer and the compiled loss
    keras.random.normal((2,))  # make sure the global seed generator exists
    frozen = model.get_layer("bn_drop").get_layer("fc2")
    frozen.trainable = False
    before = _state(model)
    report = netdoctor.check(model, X, Y)
    assert report.targets[0].framework == "keras"
    _assert_same(before, _state(model))
    collect(model, X)  # surrogate loss path too
    _assert_same(before, _state(model))


def test_probe_really_ran_in_training_mode() -> None:
    model = _model()
    bn = model.get_layer("bn_drop").get_layer("bn1")
    snap = collect(model, X, Y)
    recs = {r.name: r for r in snap.layers}
    assert abs(recs["bn_drop/bn1"].output.mean) < 0.2  # batch statistics, not the moving ones
    assert recs["bn_drop/drop"].output.frac_zero > 0.3  # dropout was on
    assert np.all(bn.moving_mean.numpy() == 0.0)  # and the moving mean was put back


def test_global_seed_generator_absent_before_stays_absent() -> None:
    model = _model()
    global_state.set_global_attribute("global_seed_generator", None)
    collect(model, X, Y)
    assert global_state.get_global_attribute("global_seed_generator") is None


def test_probe_is_deterministic() -> None:
    model = _model()
    a = collect(model, X, Y)
    b = collect(model, X, Y)
    for ra, rb in zip(a.layers, b.layers):
        if ra.output is not None:
            assert ra.output.mean == rb.output.mean and ra.output.frac_zero == rb.output.frac_zero
        for pa, pb in zip(ra.params, rb.params):
            if pa.grad is not None:
                assert pa.grad.l2 == pb.grad.l2
