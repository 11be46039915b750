"""Healthy control (BENCHMARK-CASES H02: DeepLocalize SO 31880720 Correct Code): the F10 network with
a sigmoid on its single output unit instead of softmax. ND401 is not scored: with only two distinct
inputs (all ones, all zeros) 46-68% of the ReLU units are dead on every sample at initialization
(measured with plain Keras over seeds 0-2), so a dead-unit report is factually right here."""

import numpy as np
import keras

EXPECT = {
    "raise": [],
    "allow": ["ND401"],
    "source": "DeepLocalize SO 31880720 Correct Code (BENCHMARK-CASES H02)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((128,)),
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    m.compile(optimizer="rmsprop", loss="binary_crossentropy")
    return m


def sample_batch():
    y = (np.arange(256) % 2).astype(np.float32)
    x = np.repeat(y[:, None], 128, axis=1).astype(np.float32)
    return x, y[:, None]
