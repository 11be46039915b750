"""SO 55328966 (DeepLocalize; defects4ML 100): raw 0-255 pixels (digits x 16); Dense(64) linear ->
Dense(50, relu) -> Dense(10, sigmoid) with categorical cross-entropy; plain gradient descent 1e-4."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND101", "ND503"],
    "not": ["ND201", "ND202"],
    "source": "SO 55328966 via DeepLocalize/DeepFD; defects4ML 100 (BENCHMARK-CASES F17)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(64),
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dense(10, activation="sigmoid"),
    ])
    m.compile(optimizer=keras.optimizers.SGD(1e-4), loss="categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits(scale=16.0)
    return x, bd.one_hot(y, 10)
