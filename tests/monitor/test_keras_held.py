"""The Keras callback's held-batch pass, eager at first and then compiled once: the same squared
gradient norms and activation health as an eager GradientTape and numpy on the same batch."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from netdoctor.adapters.keras import held as held_module  # noqa: E402
from netdoctor.adapters.keras.held import HeldPass  # noqa: E402


def _model() -> tuple["keras.Model", "keras.Model"]:
    keras.utils.set_random_seed(0)
    inp = keras.Input((12,))
    relu = keras.layers.Dense(16, activation="relu", name="relu")
    sig = keras.layers.Dense(8, activation="sigmoid", name="sig")
    h = relu(inp)
    s = sig(h)
    out = keras.layers.Dense(3, name="head")(s)
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    b = relu.bias.numpy()
    b[:8] = -1e3  # half the ReLU units can never fire: a dead fraction of exactly 0.5
    relu.bias.assign(b)
    k = sig.kernel.numpy()
    k[:, :3] *= 400.0  # three sigmoid units driven to their bounds
    sig.kernel.assign(k)
    return model, keras.Model(inp, [out, h, s])


def test_eager_then_compiled_pass_equals_an_eager_tape_and_numpy(monkeypatch):
    model, features = _model()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 12)).astype("float32")
    y = rng.integers(0, 3, 64)
    thresholds = [None, (0.05, 0.95)]
    held = HeldPass(model, x, y, features, thresholds)
    assert not held.compiled_next
    sq, health = held()  # eager: far below the seconds tracing would cost
    assert held._compiled.experimental_get_tracing_count() == 0
    monkeypatch.setattr(held_module, "COMPILE_AFTER_S", 0.0)
    assert held.compiled_next
    sq2, health2 = held()
    held()

    with tf.GradientTape() as tape:
        out, h, s = features(x, training=False)
        loss = model.compute_loss(x=x, y=y, y_pred=out, training=False)
    grads = tape.gradient(loss, model.trainable_weights)
    ref_sq = np.asarray([np.sum(np.square(g.numpy().astype(np.float64))) for g in grads])
    a, b = h.numpy(), s.numpy()
    ref_dead = 1.0 - np.mean(np.any(a > 0, axis=0))
    ref_sat = np.mean(np.mean((b <= 0.05) | (b >= 0.95), axis=0) > 0.5)

    assert not held.eager and held._compiled.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(sq, ref_sq, rtol=1e-5)
    np.testing.assert_allclose(sq2, ref_sq, rtol=1e-5)  # the compiled graph may sum in another order
    assert health.tolist() == [ref_dead, ref_sat] == health2.tolist()
    assert ref_dead == 0.5 and ref_sat > 0  # the cases are not vacuous
    assert len(sq) == len(model.trainable_weights) and (sq > 0).sum() >= 4


def test_a_weight_without_gradient_counts_zero_and_no_activation_gives_an_empty_vector():
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    used = keras.layers.Dense(2, name="used")
    unused = keras.layers.Dense(2, name="unused")
    unused.build((None, 4))  # a trainable weight the loss never reaches
    model = keras.Model(inp, used(inp))
    model._tracker.unlock()
    model.extra = unused
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = np.ones((8, 4), "float32")
    sq, health = HeldPass(model, x, np.zeros((8, 2), "float32"), None, [])()
    names = [v.path for v in model.trainable_weights]
    assert len(sq) == len(names) and health.size == 0
    assert sum(n.startswith("unused") for n in names) == 2  # kernel and bias are watched
    assert all(sq[i] == 0.0 for i, n in enumerate(names) if n.startswith("unused"))
    assert all(sq[i] > 0.0 for i, n in enumerate(names) if n.startswith("used"))
