"""ND401 dead-units (bad, Keras): ``bias_initializer=Constant(-5)`` kills a ReLU layer."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import make_blobs


def sample_batch():
    x, y = make_blobs(n_samples=256, centers=3, n_features=4, random_state=0)
    return ((x - x.mean(0)) / x.std(0)).astype("float32"), y


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(4,)),
        layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
        layers.Dense(64, activation="relu", bias_initializer=keras.initializers.Constant(-5.0)),  # the fault
        layers.Dense(3),
    ])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model
