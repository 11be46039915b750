"""SO 48934338 (DeepLocalize; DeepFD GT: learning rate): x in [0, 5) step 0.1, y = 5 x^2 plus cubed
Gaussian noise; 1 -> Dense(50, relu) -> Dense(30, relu) -> Dense(1), MSE, SGD lr 0.1 (the fix: 0.001).
Ground truth for ND302, measured with plain Keras: at initialization one SGD step at the post's
lr 0.1 multiplies the loss by more than 1e3 (divergence), while lr 0.001 lowers it."""

import numpy as np
import keras

EXPECT = {
    "raise": ["ND302"],
    "not": ["ND201", "ND202", "ND303"],
    "source": "SO 48934338 via DeepLocalize/DeepFD (BENCHMARK-CASES F14)",
    "seeds": 2,
}


def build_model():
    m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(50, activation="relu"),
                          keras.layers.Dense(30, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return m


def sample_batch():
    rng = np.random.default_rng(0)
    x = np.arange(0, 5, 0.1, dtype=np.float32)[:, None]
    y = (5 * x ** 2 + rng.normal(0, 1, size=x.shape) ** 3).astype(np.float32)
    return x, y
