"""Healthy Keras control (issue 16): breast cancer (standardized), a linear one-unit head and
``BinaryCrossentropy(from_logits=True)``."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": [],
    "not": ["ND503", "ND303", "ND505", "ND510"],
    "source": "issue 16 healthy control: binary cross-entropy from logits on a linear head (Keras)",
}


def build_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((30,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return m


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return x, y.astype("float32").reshape(-1, 1)
