"""ND102 nonfinite-inputs (good, Keras): rows with missing values dropped before training."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers
from sklearn.datasets import load_wine


def sample_batch():
    data = load_wine()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.02] = np.nan
    ok = np.isfinite(x).all(axis=1)
    return x[ok].astype("float32"), data.target[ok]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(13,)), layers.Dense(32, activation="relu"), layers.Dense(3)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
