"""ND204 nonfinite-weights (bad, Keras): weights restored from a diverged run contain NaN."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers
from sklearn.datasets import make_blobs


def sample_batch():
    x, y = make_blobs(n_samples=256, centers=3, n_features=4, random_state=0)
    return ((x - x.mean(0)) / x.std(0)).astype("float32"), y


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(32, activation="relu", name="hidden"),
                              layers.Dense(3, name="logits")])
    kernel, bias = model.get_layer("hidden").get_weights()
    kernel[1, 3] = np.nan  # what a checkpoint written after a NaN loss looks like
    model.get_layer("hidden").set_weights([kernel, bias])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
