"""NeuraLint Synthetic Samples TF_lenet_useless_bias: conv/dense layers with a bias feeding a
BatchNormalization (the bias is cancelled; harmless, info). BN sits before the dropout (the accepted
order). Digits 8x8."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND504"],
    "not": ["ND101", "ND201", "ND301", "ND302", "ND401", "ND501"],
    "source": "NeuraLint Synthetic Samples TF_lenet_useless_bias.py (BENCHMARK-CASES H06)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same"),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same"),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.Dropout(0.25),
        layers.Dense(10, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), y
