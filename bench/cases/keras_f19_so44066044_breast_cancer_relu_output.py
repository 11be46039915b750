"""SO 44066044 (DeepLocalize; DeepFD GT: missing preprocess; the patch also changes the output ReLU
to sigmoid): raw tabular features (breast cancer stands in for 11 network-traffic features; max 4254)
-> Dense(12, relu) -> Dense(12, relu) -> Dense(1, relu) with binary cross-entropy, Adam."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND101", "ND503"],
    "not": ["ND201", "ND202"],
    "source": "SO 44066044 via DeepLocalize/DeepFD (BENCHMARK-CASES F19)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((30,)),
        keras.layers.Dense(12, activation="relu"),
        keras.layers.Dense(12, activation="relu"),
        keras.layers.Dense(1, activation="relu"),
    ])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def sample_batch():
    x, y = bd.breast_cancer()
    return x, y[:, None]
