"""SO 48221692 (DeepLocalize; DeepFD GT: activation): 1-feature linear regression with targets
y = 40 x + 60 + noise (range about -100..100 here); Dense(5, sigmoid) -> Dense(1, sigmoid), MSE, SGD.
A sigmoid output can never reach targets outside [0, 1]."""

import numpy as np
import keras

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND201", "ND401"],
    "source": "SO 48221692 via DeepLocalize/DeepFD (BENCHMARK-CASES F23); TheDeepChecker regrNN_inapp_act",
    "note": "beyond the catalogue's listed ND503 pairs: bounded output activation for an unbounded regression target",
}


def build_model():
    m = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(5, activation="sigmoid"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    m.compile(optimizer="sgd", loss="mse")
    return m


def sample_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 1)).astype(np.float32)
    y = (80 * x + 10 + rng.normal(0, 5, size=(256, 1))).astype(np.float32)
    return x, y
