"""ND403 signal-drift (good, Keras): ``he_normal`` keeps the scale."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_digits


def sample_batch():
    d = load_digits()
    x = (d.data[:256] - d.data.mean(0)) / (d.data.std(0) + 1e-8)
    return x.astype("float32"), d.target[:256]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    hidden = [layers.Dense(64, activation="relu", kernel_initializer="he_normal") for _ in range(8)]
    model = keras.Sequential([keras.Input(shape=(64,)), *hidden, layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
