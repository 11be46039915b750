"""ND303 nonfinite-gradients (good, Keras): ReLU hidden layers."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import make_blobs


def sample_batch():
    x, y = make_blobs(n_samples=256, centers=3, n_features=2, cluster_std=2, random_state=2)
    return ((x - x.mean(0)) / x.std(0)).astype("float32"), y


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    hidden = [layers.Dense(8, activation="relu", kernel_initializer="he_uniform") for _ in range(3)]
    model = keras.Sequential([keras.Input(shape=(2,)), *hidden, layers.Dense(3)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
