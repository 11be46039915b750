"""ND302 exploding-gradients (bad, Keras): ``RandomNormal(stddev=1.0)`` on 256-wide ReLU layers."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_digits


def sample_batch():
    d = load_digits()
    return (d.data[:256] / 16).astype("float32"), d.target[:256]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    big = keras.initializers.RandomNormal(stddev=1.0)
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        layers.Dense(256, activation="relu", kernel_initializer=big),
        layers.Dense(256, activation="relu", kernel_initializer=big),
        layers.Dense(256, activation="relu", kernel_initializer=big),
        layers.Dense(10, kernel_initializer=big),
    ])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
