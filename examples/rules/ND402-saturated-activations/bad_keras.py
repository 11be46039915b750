"""ND402 saturated-activations (bad, Keras): tanh units fed raw values up to 10,000 (SO 33969059)."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


def sample_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10000, size=(256, 3)).astype("float32")
    y = ((2 * x[:, 0] + x[:, 1] + 0.5 * x[:, 2]) / 35000).astype("float32")[:, None]
    return x, y


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(8, activation="tanh"),
                              layers.Dense(8, activation="tanh"), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model
