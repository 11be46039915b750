"""Keras categorical cross-entropy on a one-unit regression head (issue 16): diabetes (standardized
target), ``loss="categorical_crossentropy"``. Over one unit the normalized prediction is always 1: the
loss is constant and sends no gradient."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND505"],
    "source": "issue 16: categorical cross-entropy for a regression (Keras)",
}


def build_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


def sample_batch():
    return bd.diabetes(scaled=True, target_scaled=True)
