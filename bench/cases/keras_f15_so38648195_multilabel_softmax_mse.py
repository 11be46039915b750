"""SO 38648195 (DeepLocalize; DeepFD GT: activation, loss): make_multilabel_classification(n_features=20,
n_classes=3); 20 -> Dense(20, relu) -> Dropout(0.5) -> Dense(20, relu) -> Dropout(0.5) -> Dense(3,
softmax) with MSE. Multi-hot targets cannot be matched by a distribution that sums to 1 (the fix:
sigmoid + binary cross-entropy)."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND201", "ND301", "ND302"],
    "source": "SO 38648195 via DeepLocalize/DeepFD (BENCHMARK-CASES F15)",
    "note": "beyond the catalogue's listed ND503 pairs: softmax output for multi-hot targets (MSE loss)",
}


def build_model():
    m = keras.Sequential([
        keras.Input((20,)),
        keras.layers.Dense(20, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(20, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(3, activation="softmax"),
    ])
    m.compile(optimizer="sgd", loss="mse")
    return m


def sample_batch():
    return bd.multilabel()
