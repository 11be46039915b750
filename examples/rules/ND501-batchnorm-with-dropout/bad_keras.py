"""ND501 batchnorm-with-dropout (bad, Keras): Conv1D -> Dropout -> BatchNormalization (SO 55776436)."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_digits


def sample_batch():
    d = load_digits()
    return (d.data[:256] / 16).reshape(-1, 64, 1).astype("float32"), d.target[:256]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(64, 1)),
        layers.Conv1D(16, 5, use_bias=False),
        layers.Dropout(0.5),
        layers.BatchNormalization(),  # the fault: statistics of the dropped-out signal
        layers.Activation("relu"),
        layers.GlobalAveragePooling1D(),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
