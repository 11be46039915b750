"""Trap (catalogue ND304: frozen on purpose): a small conv base with ``trainable = False`` (the Keras
transfer-learning recipe) under a new trainable softmax head. Digits 8x8."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": [],
    "source": "Keras transfer-learning guide (base_model.trainable = False); catalogue ND304",
}


def build_model():
    base = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(32, 3, padding="same", activation="relu"),
                             layers.Conv2D(32, 3, padding="same", activation="relu"), layers.GlobalAveragePooling2D()],
                            name="base")
    base.trainable = False
    inp = keras.Input((8, 8, 1))
    out = layers.Dense(10, activation="softmax", name="head")(base(inp, training=False))
    m = keras.Model(inp, out)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), y
