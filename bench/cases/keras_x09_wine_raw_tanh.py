"""Raw wine features (proline up to 1680, magnesium ~100) into a tanh network (SO 39817949-style
saturated activations; TheDeepChecker missing_normalization): most first-layer tanh units sit at +-1."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND101", "ND402"],
    "not": ["ND201", "ND401", "ND503"],
    "source": "TheDeepChecker missing_normalization + pitfalls 'saturated sigmoid' (SO 39817949)",
}


def build_model():
    m = keras.Sequential([keras.Input((13,)), keras.layers.Dense(32, activation="tanh"),
                          keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.wine(scaled=False)
