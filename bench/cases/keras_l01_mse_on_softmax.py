"""MSE on softmax probabilities in Keras (issue 16): a digits classifier compiled with
``mean_squared_error`` against one-hot targets; the logits get ~0.02x cross-entropy's gradient."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND505"],
    "not": ["ND101", "ND503", "ND506", "ND507"],
    "source": "issue 16: MSE on softmax outputs (Keras)",
}


def build_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="mean_squared_error")
    return m


def sample_batch():
    x, y = bd.digits()
    return x, bd.one_hot(y, 10)
