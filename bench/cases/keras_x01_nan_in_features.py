"""Missing values reach the model as NaN (TheDeepChecker pitfalls "NaN in data", SO 53640858):
standardized breast cancer with 2% of three columns set to NaN; Dense(32, relu) -> Dense(1, sigmoid),
binary cross-entropy. Loss and gradients are NaN."""

import numpy as np
import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND102", "ND303"],
    "not": ["ND101", "ND201", "ND401", "ND503"],
    "source": "TheDeepChecker pitfalls_data 'NaN in data' (SO 53640858)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([keras.Input((30,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    rng = np.random.default_rng(0)
    for col in (3, 13, 23):
        x[rng.random(len(x)) < 0.02, col] = np.nan
    return x, y[:, None]
