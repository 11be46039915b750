"""ND502 deep-without-normalization (good, Keras): Dense -> BatchNormalization -> ReLU blocks."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import load_digits


def sample_batch():
    d = load_digits()
    return (d.data[:256] / 16).astype("float32"), d.target[:256]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    blocks = []
    for _ in range(10):
        blocks += [layers.Dense(32, use_bias=False, kernel_initializer="he_normal"), layers.BatchNormalization(),
                   layers.Activation("relu")]
    model = keras.Sequential([keras.Input(shape=(64,)), *blocks, layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
