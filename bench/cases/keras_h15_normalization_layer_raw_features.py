"""Trap (catalogue ND101: "Keras Normalization ... is fine"): raw breast-cancer features (max 4254)
standardized inside the model by a ``Normalization`` layer adapted on the training data."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": [],
    "source": "netdoctor catalogue ND101 (in-model Normalization); BENCHMARK-CASES section 4",
    "gate": True,
}


def build_model():
    x, _ = bd.breast_cancer(n=569)
    norm = layers.Normalization()
    norm.adapt(x)
    m = keras.Sequential([keras.Input((30,)), norm, layers.Dense(16, activation="relu"),
                          layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def sample_batch():
    x, y = bd.breast_cancer()
    return x, y[:, None]
