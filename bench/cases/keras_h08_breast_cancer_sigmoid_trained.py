"""Healthy control (BENCHMARK-CASES H08, F19 fixed): standardized breast cancer -> Dense(12, relu) ->
Dense(12, relu) -> Dense(1, sigmoid), binary cross-entropy, Adam; trained 20 epochs in build_model
(the recipe measured accuracy 1.00)."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": [],
    "not": ["ND103"],
    "source": "BENCHMARK-CASES H08 (control in F19); DeepLocalize SO 44066044 Correct Code",
}


def build_model():
    m = keras.Sequential([keras.Input((30,)), keras.layers.Dense(12, activation="relu"),
                          keras.layers.Dense(12, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = bd.breast_cancer(n=569, scaled=True)
    m.fit(x, y, epochs=20, batch_size=32, verbose=0)
    return m


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return x, y[:, None]
