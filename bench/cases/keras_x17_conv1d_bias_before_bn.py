"""Conv1D layers with a bias feeding BatchNormalization (NeuraLint "useless bias"; Keras ResNet50
has 49 of these): cancelled bias, info level. Otherwise a healthy sequence regressor."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND504"],
    "not": ["ND101", "ND201", "ND301", "ND401", "ND501"],
    "source": "NeuraLint Synthetic Samples TF_lenet_useless_bias.py; BENCHMARK-CASES section 4 (Keras ResNet50 conv bias)",
}


def build_model():
    m = keras.Sequential([
        keras.Input((20, 4)),
        layers.Conv1D(16, 3, padding="same"), layers.BatchNormalization(), layers.Activation("relu"),
        layers.Conv1D(16, 3, padding="same"), layers.BatchNormalization(), layers.Activation("relu"),
        layers.GlobalAveragePooling1D(), layers.Dense(1),
    ])
    m.compile(optimizer="adam", loss="mse")
    return m


def sample_batch():
    return bd.sequences()
