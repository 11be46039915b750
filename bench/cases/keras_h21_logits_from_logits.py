"""Healthy control: a linear (logit) output compiled with
``SparseCategoricalCrossentropy(from_logits=True)`` - the numerically preferred pairing. Digits/16."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": [],
    "source": "Keras losses documentation (from_logits=True with a linear output); contrast to keras_x07",
    "gate": True,
}


def build_model():
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
                          keras.layers.Dense(10)])
    m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def sample_batch():
    return bd.digits()
