"""Healthy control: Keras GRU(32, return_sequences) -> GRU(32) -> Dense(1) forecasting the next value
of standardized sine sequences, MSE."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": [],
    "source": "Keras GRU (brief: recurrent real-network controls)",
}


def build_model():
    m = keras.Sequential([keras.Input((20, 4)), keras.layers.GRU(32, return_sequences=True),
                          keras.layers.GRU(32), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def sample_batch():
    return bd.sequences()
