"""ND103 constant-feature (good, Keras): the constant column is dropped."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_wine


def sample_batch():
    data = load_wine()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    keep = x.std(axis=0) > 0
    return x[:, keep].astype("float32"), data.target


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(13,)), layers.Dense(32, activation="relu"), layers.Dense(3)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
