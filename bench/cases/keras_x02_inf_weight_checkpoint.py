"""A corrupted checkpoint: one kernel entry is +Inf (defects4ML 013 checkpoint-load bug; netdoctor
catalogue ND204). Digits/16 MLP with a softmax head; the forward pass produces Inf/NaN."""

import numpy as np
import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND204", "ND303"],
    "not": ["ND101", "ND201", "ND202", "ND401"],
    "source": "defects4ML 013 (checkpoint-load bug); netdoctor catalogue ND204",
}


def build_model():
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu", name="h1"),
                          keras.layers.Dense(64, activation="relu", name="h2"),
                          keras.layers.Dense(10, activation="softmax", name="out")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    k, b = m.get_layer("h2").get_weights()
    k[5, 9] = np.inf
    m.get_layer("h2").set_weights([k, b])
    return m


def sample_batch():
    return bd.digits()
