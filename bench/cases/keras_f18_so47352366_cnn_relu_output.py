"""SO 47352366 (DeepLocalize; DeepFD GT: activation): MNIST CNN (two 5x5 conv + ReLU, dense ReLU,
Dropout 0.5) whose output is Dense(10, relu) with categorical cross-entropy, Adam, bias constant 0.1.
Digits 8x8 (/16) stand in for MNIST."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND201", "ND202"],
    "source": "SO 47352366 via DeepLocalize/DeepFD (BENCHMARK-CASES F18)",
}


def build_model():
    b = keras.initializers.Constant(0.1)
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu", bias_initializer=b),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 5, padding="same", activation="relu", bias_initializer=b),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu", bias_initializer=b),
        layers.Dropout(0.5),
        layers.Dense(10, activation="relu", bias_initializer=b),
    ])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), bd.one_hot(y, 10)
