"""NeuraLint Synthetic Samples TF_lenet_dropout_before_batchnorm: pool -> Dropout(0.35) -> BN,
pool -> Dropout(0.3) -> BN, dense -> Dropout(0.25) -> BN. Digits 8x8."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND501"],
    "not": ["ND101", "ND201", "ND203", "ND301"],
    "source": "NeuraLint Synthetic Samples TF_lenet_dropout_before_batchnorm.py (BENCHMARK-CASES F28)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.35),
        layers.BatchNormalization(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Dropout(0.3),
        layers.BatchNormalization(),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.25),
        layers.BatchNormalization(),
        layers.Dense(10, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), y
