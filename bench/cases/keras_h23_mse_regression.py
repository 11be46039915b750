"""Healthy Keras control (issue 16): diabetes (standardized target), linear head, ``loss="mse"``."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": [],
    "not": ["ND503", "ND505", "ND510", "ND302", "ND303"],
    "source": "issue 16 healthy control: regression with mean MSE (Keras)",
}


def build_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def sample_batch():
    return bd.diabetes(scaled=True, target_scaled=True)
