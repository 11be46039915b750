"""SO 34311586 (DeepLocalize; NeuraLint; defects4ML 084): XOR; 2 -> Dense(2, sigmoid) -> Dense(3,
sigmoid) -> Dense(1, softmax), RandomUniform(-0.05, 0.05), MSE, SGD 0.001 with Nesterov momentum.
A one-unit softmax is constant 1.0."""

import numpy as np
import _keraskit as kk
import keras

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND401", "ND302"],
    "source": "SO 34311586 via DeepLocalize/NeuraLint/defects4ML 084 (BENCHMARK-CASES F11)",
}


def build_model():
    m = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(2, activation="sigmoid", kernel_initializer=kk.initializer("uniform005")),
        keras.layers.Dense(3, activation="sigmoid", kernel_initializer=kk.initializer("uniform005")),
        keras.layers.Dense(1, activation="softmax", kernel_initializer=kk.initializer("uniform005")),
    ])
    m.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9, nesterov=True), loss="mse")
    return m


def sample_batch():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, dtype=np.float32)
    y = np.array([0, 1, 1, 0] * 8, dtype=np.float32)[:, None]
    return x, y
