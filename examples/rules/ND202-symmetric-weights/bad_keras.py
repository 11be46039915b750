"""ND202 symmetric-weights (bad, Keras): ``Constant(0.1)`` kernels (NeuraLint's LeNet mutant)."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_digits


def sample_batch():
    d = load_digits()
    return (d.data[:256] / 16).astype("float32"), d.target[:256]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    const = keras.initializers.Constant(0.1)
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        layers.Dense(64, activation="relu", kernel_initializer=const),
        layers.Dense(64, activation="relu", kernel_initializer=const),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
