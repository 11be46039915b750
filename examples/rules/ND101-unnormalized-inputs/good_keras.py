"""ND101 unnormalized-inputs (good, Keras): a Normalization layer adapted to the training data."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_breast_cancer


def sample_batch():
    data = load_breast_cancer()
    return data.data[:256].astype("float32"), data.target[:256]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    norm = layers.Normalization(axis=-1)
    norm.adapt(load_breast_cancer().data.astype("float32"))  # per-feature mean and variance
    model = keras.Sequential([keras.Input(shape=(30,)), norm, layers.Dense(32, activation="relu"), layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
