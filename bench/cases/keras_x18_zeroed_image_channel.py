"""An image pipeline zeroed one channel: synthetic 8x8x3 "RGB" digits with an all-zero third channel
(info: a constant channel carries no information)."""

import numpy as np
import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND103"],
    "not": ["ND101", "ND102", "ND201", "ND401"],
    "source": "netdoctor catalogue ND103 ('an image channel that was zeroed')",
}


def build_model():
    m = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(16, 3, padding="same", activation="relu"),
                          layers.GlobalAveragePooling2D(), layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    img = x.reshape(-1, 8, 8, 1)
    return np.concatenate([img, 1.0 - img, np.zeros_like(img)], axis=-1).astype(np.float32), y
