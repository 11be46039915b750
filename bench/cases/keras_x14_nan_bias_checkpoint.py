"""A corrupted checkpoint with a NaN in a Dense bias (netdoctor catalogue ND204): every output of that
layer's unit, the loss and the gradients are NaN. Standardized iris."""

import numpy as np
import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND204", "ND303"],
    "not": ["ND101", "ND201", "ND401"],
    "source": "netdoctor catalogue ND204; defects4ML 013 checkpoint-load bug",
}


def build_model():
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu", name="h"),
                          keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    k, b = m.get_layer("h").get_weights()
    b[2] = np.nan
    m.get_layer("h").set_weights([k, b])
    return m


def sample_batch():
    return bd.iris(scaled=True)
