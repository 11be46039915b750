"""NeuraLint Synthetic Samples TF_lenet_constant_init: the same LeNet with its hidden kernels set to
the constant 0.1: every filter/unit of a layer is identical and stays so. Digits 8x8."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND202"],
    "not": ["ND201", "ND401", "ND101"],
    "source": "NeuraLint Synthetic Samples TF_lenet_constant_init.py (BENCHMARK-CASES F26)",
    "gate": True,
}


def build_model():
    c = keras.initializers.Constant(0.1)
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=c),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu", kernel_initializer=c),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu", kernel_initializer=c),
        layers.Dense(10, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), y
