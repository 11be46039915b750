"""A ``stop_gradient`` left between encoder and head (the Keras form of a stray ``.detach()``): the
encoder's two Dense layers never receive a gradient. Standardized wine."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND304"],
    "not": ["ND101", "ND301", "ND401", "ND201"],
    "source": "netdoctor catalogue ND304 (stop_gradient in the path); TheDeepChecker 'unchanged parameters' check",
}


class StopGradient(layers.Layer):
    def call(self, x):
        return keras.ops.stop_gradient(x)


def build_model():
    inp = keras.Input((13,))
    h = layers.Dense(32, activation="relu", name="enc1")(inp)
    h = layers.Dense(32, activation="relu", name="enc2")(h)
    h = StopGradient(name="stop")(h)
    out = layers.Dense(3, activation="softmax", name="head")(h)
    m = keras.Model(inp, out)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.wine()
