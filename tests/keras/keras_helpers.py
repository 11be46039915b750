"""Models and shortcuts shared by the Keras adapter tests (real Keras models, no mocks)."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from netdoctor.adapters import keras as adapter  # noqa: E402
from netdoctor.snapshot import ModelSnapshot, Need, ProbeSettings  # noqa: E402

ALL = frozenset(Need)
L = keras.layers


def collect(model: Any, x: Any = None, y: Any = None, *, loss_fn: Any = None, needs: frozenset[Need] = ALL,
            settings: ProbeSettings | None = None, input_shape: Any = None) -> ModelSnapshot:
    """``adapter.collect`` with every need unless told otherwise."""
    return adapter.collect(model, inputs=x, targets=y, loss_fn=loss_fn, needs=needs,
                           settings=settings or ProbeSettings(), input_shape=input_shape)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def lecture_model() -> keras.Model:
    """The lecture's example: Input(1), Dense(10, relu, He), BN, Dense(10, relu, He), Dense(1)."""
    init = keras.initializers.HeNormal(seed=1)
    model = keras.Sequential(name="lecture")
    model.add(keras.Input(shape=(1,)))
    model.add(L.Dense(10, activation="relu", kernel_initializer=init, name="d1"))
    model.add(L.BatchNormalization(name="bn"))
    model.add(L.Dense(10, activation="relu", kernel_initializer=init, name="d2"))
    model.add(L.Dense(1, activation="linear", name="out"))
    return model


def lecture_data(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    x = rng(0).uniform(-1, 1, size=(n, 1)).astype("float32")
    return x, (np.sin(3 * x) + 0.1 * x).astype("float32")


def bn_dropout_model() -> keras.Model:
    """A model whose training-mode forward changes state: BatchNormalization and Dropout."""
    inp = keras.Input((6,), name="feat")
    h = L.Dense(16, activation="relu", name="fc1")(inp)
    h = L.BatchNormalization(name="bn1")(h)
    h = L.Dropout(0.5, name="drop")(h)
    h = L.Dense(8, activation="tanh", name="fc2")(h)
    out = L.Dense(3, activation="softmax", name="head")(h)
    return keras.Model(inp, out, name="bn_drop")


def small_cnn() -> keras.Model:
    return keras.Sequential([
        keras.Input((12, 12, 3)),
        L.Conv2D(8, 3, padding="same", name="conv1"), L.BatchNormalization(name="bn1"), L.ReLU(name="act1"),
        L.MaxPooling2D(name="pool1"),
        L.Conv2D(8, 3, padding="same", activation="relu", name="conv2"),
        L.GlobalAveragePooling2D(name="gap"), L.Dense(4, name="logits"),
    ], name="cnn")


def by_name(snap: ModelSnapshot) -> dict[str, Any]:
    return {r.name: r for r in snap.layers}
