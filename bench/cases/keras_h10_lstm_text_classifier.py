"""Healthy control: Embedding(500, 32) -> LSTM(32) -> Dense(1, sigmoid), binary cross-entropy, on
synthetic token ids (integer ids into an embedding are not unnormalized features)."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": [],
    "source": "Keras LSTM text classifier (brief: LSTM controls; catalogue ND101 token-id exemption)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([keras.Input((16,), dtype="int64"), keras.layers.Embedding(500, 32),
                          keras.layers.LSTM(32), keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def sample_batch():
    x, y = bd.tokens()
    return x, y.astype("float32")[:, None]
