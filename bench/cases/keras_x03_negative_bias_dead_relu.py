"""A ReLU layer whose biases start at -5 is 100% dead at initialization (BENCHMARK-CASES F30 note;
TheDeepChecker pitfalls dead ReLU, SO 46639430): wine (standardized), Dense(64, relu) ->
Dense(64, relu, bias -5) -> Dense(3, softmax). No gradient reaches the first two layers."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND401", "ND304"],
    "not": ["ND101", "ND201", "ND202", "ND203", "ND302"],
    "source": "BENCHMARK-CASES F30 (bias -5 control); TheDeepChecker pitfalls_data dead ReLU (SO 46639430)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((13,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu", bias_initializer=keras.initializers.Constant(-5.0)),
        keras.layers.Dense(3, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.wine()
