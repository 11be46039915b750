"""ND302 exploding-gradients (good, Keras): ``he_normal`` kernels and a clipped optimizer."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_digits


def sample_batch():
    d = load_digits()
    return (d.data[:256] / 16).astype("float32"), d.target[:256]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(64,)),
        layers.Dense(256, activation="relu", kernel_initializer="he_normal"),
        layers.Dense(256, activation="relu", kernel_initializer="he_normal"),
        layers.Dense(256, activation="relu", kernel_initializer="he_normal"),
        layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.SGD(global_clipnorm=5.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
