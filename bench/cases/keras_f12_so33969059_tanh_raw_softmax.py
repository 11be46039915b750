"""SO 33969059 (DeepLocalize; NeuraLint; DeepFD GT: activation): linear-regression target
y = 2 x1 + x2 + 0.5 x3 + 2.2 with x uniform in [0, 10000]; Dense(3, tanh) -> Dropout(0.5) ->
Dense(2, tanh) -> Dropout(0.5) -> Dense(1, softmax), RandomUniform(-0.05, 0.05), MSE, SGD 0.1.
Measured by the recipe: 99.4% of first-layer tanh outputs saturated."""

import numpy as np
import _keraskit as kk
import keras

EXPECT = {
    "raise": ["ND101", "ND402", "ND503"],
    "not": ["ND201", "ND401"],
    "source": "SO 33969059 via DeepLocalize/NeuraLint (BENCHMARK-CASES F12)",
}


def build_model():
    init = kk.initializer("uniform005")
    m = keras.Sequential([
        keras.Input((3,)),
        keras.layers.Dense(3, activation="tanh", kernel_initializer=init),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(2, activation="tanh", kernel_initializer=init),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1, activation="softmax", kernel_initializer=init),
    ])
    m.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return m


def sample_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10000, size=(256, 3)).astype(np.float32)
    y = (2 * x[:, 0] + x[:, 1] + 0.5 * x[:, 2] + 2.2).astype(np.float32)[:, None]
    return x, y
