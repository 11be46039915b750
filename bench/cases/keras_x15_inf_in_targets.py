"""Log-transformed regression target with a zero in it (log(0) = -inf): standardized diabetes
features, target log(y - min(y))."""

import numpy as np
import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND102", "ND303"],
    "not": ["ND101", "ND201", "ND401"],
    "source": "defects4ML NaN-loss family; TheDeepChecker pitfalls 'NaN in data'",
}


def build_model():
    m = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def sample_batch():
    from sklearn.datasets import load_diabetes

    d = load_diabetes(scaled=True)
    x = bd.standardize(d.data)[:256]
    with np.errstate(divide="ignore"):
        t = np.log(d.target[:256] - d.target.min()).astype(np.float32)
    if np.isfinite(t).all():
        t[0] = -np.inf
    return x, t[:, None]
