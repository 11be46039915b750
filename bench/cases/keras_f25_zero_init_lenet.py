"""NeuraLint Synthetic Samples TF_lenet_zeros_init: LeNet (conv 32, conv 64, dense 512 -> here 128)
with the three hidden kernels zero-initialized, softmax head, categorical cross-entropy. Digits 8x8.
Trap: zero activations are not dead ReLUs."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND201"],
    "not": ["ND401", "ND301", "ND101", "ND203"],
    "source": "NeuraLint Synthetic Samples TF_lenet_zeros_init.py (BENCHMARK-CASES F25)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="zeros"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu", kernel_initializer="zeros"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu", kernel_initializer="zeros"),
        layers.Dense(10, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), y
