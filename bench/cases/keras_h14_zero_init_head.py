"""Trap (BENCHMARK-CASES section 4, ViT-style): a digits ConvNet whose final Dense head is
zero-initialized on purpose; every gradient below it is zero until the first update."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": [],
    "source": "ViT zero-initialized classifier head (BENCHMARK-CASES section 4 traps)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer="he_normal"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu", kernel_initializer="he_normal"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(10, activation="softmax", kernel_initializer="zeros", name="head"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), y
