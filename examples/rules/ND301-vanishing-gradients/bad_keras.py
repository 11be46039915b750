"""ND301 vanishing-gradients (bad, Keras): eight Dense(5, sigmoid) layers."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import make_circles


def sample_batch():
    x, y = make_circles(n_samples=256, noise=0.1, random_state=1)
    return x.astype("float32"), y.astype("float32")[:, None]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    hidden = [layers.Dense(5, activation="sigmoid", kernel_initializer="he_uniform") for _ in range(8)]
    model = keras.Sequential([keras.Input(shape=(2,)), *hidden, layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
