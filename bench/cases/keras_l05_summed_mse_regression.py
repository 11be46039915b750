"""A Keras regression loss summed over the batch (issue 16): diabetes (standardized target),
``MeanSquaredError(reduction="sum")``."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND510"],
    "not": ["ND101", "ND503"],
    "source": "issue 16: MSE with reduction='sum' (Keras)",
}


def build_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss=keras.losses.MeanSquaredError(reduction="sum"))
    return m


def sample_batch():
    return bd.diabetes(scaled=True, target_scaled=True)
