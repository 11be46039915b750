"""A sigmoid output regressed onto targets in [-1, 1] in Keras (issue 16): about half the targets are
out of reach. Diabetes (standardized features, target rescaled to [-1, 1])."""

import _benchdata as bd
import keras
import numpy as np

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND505", "ND506"],
    "source": "issue 16: sigmoid output for targets in [-1, 1] (Keras)",
}


def build_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="mse")
    return m


def sample_batch():
    x, y = bd.diabetes(scaled=True)
    return x, (2 * (y - y.min()) / (y.max() - y.min()) - 1).astype(np.float32)
