"""Healthy control (BENCHMARK-CASES H06, NeuraLint TF_lenet.py ordering): conv -> BN -> ReLU -> pool
blocks without conv bias, dense -> BN -> ReLU -> Dropout(0.25) (BN before dropout: the accepted
order), softmax head. Digits 8x8."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": [],
    "not": ["ND504"],
    "source": "NeuraLint Synthetic Samples TF_lenet.py (BENCHMARK-CASES H06)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", use_bias=False), layers.BatchNormalization(), layers.Activation("relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", use_bias=False), layers.BatchNormalization(), layers.Activation("relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, use_bias=False), layers.BatchNormalization(), layers.Activation("relu"),
        layers.Dropout(0.25),
        layers.Dense(10, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), y
