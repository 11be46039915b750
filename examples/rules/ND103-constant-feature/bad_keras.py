"""ND103 constant-feature (bad, Keras): a sensor column that is always 0."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers
from sklearn.datasets import load_wine


def sample_batch():
    data = load_wine()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    x = np.column_stack([x, np.zeros(len(x))])  # an unplugged sensor
    return x.astype("float32"), data.target


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(14,)), layers.Dense(32, activation="relu"), layers.Dense(3)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
