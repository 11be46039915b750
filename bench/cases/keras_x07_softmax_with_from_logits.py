"""A softmax output compiled with ``from_logits=True`` (softmax applied twice; NeuraLint
wrong_loss_inputs, UMLAUT's softmax/logits heuristics). Digits/16, so the input scale is fine."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND201", "ND301", "ND401"],
    "source": "NeuraLint TF_lenet_wrong_loss_inputs; UMLAUT heuristics (softmax vs from_logits)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def sample_batch():
    return bd.digits()
