"""ND304 no-gradient (good, Keras): encoder and head trained together."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import make_blobs


def sample_batch():
    x, y = make_blobs(n_samples=256, centers=3, n_features=4, random_state=0)
    return ((x - x.mean(0)) / x.std(0)).astype("float32"), y


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(4,))
    h = layers.Dense(32, activation="relu", name="enc1")(inputs)
    h = layers.Dense(16, activation="relu", name="enc2")(h)
    outputs = layers.Dense(3, name="head")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
