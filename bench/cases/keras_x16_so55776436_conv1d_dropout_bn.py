"""SO 55776436 (NeuraLint SO sample): Conv1D -> Dropout(0.5) -> BatchNormalization -> ReLU, twice, on
standardized sine sequences."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND501"],
    "not": ["ND101", "ND201", "ND301"],
    "source": "SO 55776436 via NeuraLint sample_buggy_scripts/SO Samples (BENCHMARK-CASES F28)",
}


def build_model():
    m = keras.Sequential([
        keras.Input((20, 4)),
        layers.Conv1D(16, 3, padding="same"), layers.Dropout(0.5), layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.Conv1D(16, 3, padding="same"), layers.Dropout(0.5), layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.GlobalAveragePooling1D(), layers.Dense(1),
    ])
    m.compile(optimizer="adam", loss="mse")
    return m


def sample_batch():
    return bd.sequences()
