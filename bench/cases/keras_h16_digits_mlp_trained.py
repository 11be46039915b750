"""Healthy control: digits/16 -> Dense(128, relu) -> Dense(64, relu) -> Dense(10, softmax) trained 10
epochs with Adam in build_model (a trained small model on a scikit-learn bundled dataset)."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": [],
    "source": "trained small model on a scikit-learn bundled dataset (brief: healthy controls)",
}


def build_model():
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = bd.digits_all()
    m.fit(x, y, epochs=10, batch_size=64, verbose=0)
    return m


def sample_batch():
    return bd.digits()
