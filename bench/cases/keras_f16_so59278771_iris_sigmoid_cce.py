"""SO 59278771 (DeepLocalize; DeepFD GT: activation, optimizer, missing preprocess): unscaled iris
(cm, max 7.9); 4 -> Dense(4, relu, N(0, 0.05)) -> Dense(3, sigmoid) with categorical cross-entropy,
Adam. Fix: min-max scaling and softmax."""

import _benchdata as bd
import _keraskit as kk
import keras

EXPECT = {
    "raise": ["ND503", "ND101"],
    "not": ["ND201", "ND302", "ND303"],
    "source": "SO 59278771 via DeepLocalize/DeepFD (BENCHMARK-CASES F16)",
}


def build_model():
    m = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(4, activation="relu", kernel_initializer=kk.initializer("normal005")),
        keras.layers.Dense(3, activation="sigmoid"),
    ])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.iris()
    return x, bd.one_hot(y, 3)
