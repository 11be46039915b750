"""A constant column in the features (a sensor that was unplugged): standardized wine plus a column of
zeros."""

import numpy as np
import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND103"],
    "not": ["ND101", "ND102", "ND201", "ND401"],
    "source": "netdoctor catalogue ND103; TheDeepChecker pre-training data checks",
}


def build_model():
    m = keras.Sequential([keras.Input((14,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.wine()
    return np.concatenate([x, np.zeros((len(x), 1), np.float32)], axis=1), y
