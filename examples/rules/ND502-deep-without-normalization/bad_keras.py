"""ND502 deep-without-normalization (bad, Keras): ten plain Dense(32, relu) layers."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_digits


def sample_batch():
    d = load_digits()
    return (d.data[:256] / 16).astype("float32"), d.target[:256]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    hidden = [layers.Dense(32, activation="relu", kernel_initializer="he_normal") for _ in range(10)]
    model = keras.Sequential([keras.Input(shape=(64,)), *hidden, layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
