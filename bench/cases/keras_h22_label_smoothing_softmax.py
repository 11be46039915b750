"""Healthy control (issue 16): a softmax classifier with categorical cross-entropy and label
smoothing 0.1, a correct custom choice of loss. Digits."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": [],
    "source": "issue 16: healthy custom loss (label smoothing, Keras)",
}


def build_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    return m


def sample_batch():
    x, y = bd.digits()
    return x, bd.one_hot(y, 10)
