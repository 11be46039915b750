"""ND203 init-scale (bad, Keras): ``RandomUniform(-0.05, 0.05)`` (Keras 2's old default) with ReLU."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import make_circles


def sample_batch():
    x, y = make_circles(n_samples=256, noise=0.1, factor=0.5, random_state=1)
    return x.astype("float32"), y.astype("float32")[:, None]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    small = keras.initializers.RandomUniform(-0.05, 0.05)
    model = keras.Sequential([
        keras.Input(shape=(2,)),
        layers.Dense(16, activation="relu", kernel_initializer=small),
        layers.Dense(16, activation="relu", kernel_initializer=small),
        layers.Dense(16, activation="relu", kernel_initializer=small),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
