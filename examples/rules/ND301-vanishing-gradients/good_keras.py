"""ND301 vanishing-gradients (good, Keras): Dense -> BatchNormalization -> ReLU blocks."""

from __future__ import annotations

import keras
from keras import layers
from sklearn.datasets import make_circles


def sample_batch():
    x, y = make_circles(n_samples=256, noise=0.1, random_state=1)
    return x.astype("float32"), y.astype("float32")[:, None]


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    blocks = []
    for _ in range(8):
        blocks += [layers.Dense(5, use_bias=False, kernel_initializer="he_normal"), layers.BatchNormalization(),
                   layers.Activation("relu")]
    model = keras.Sequential([keras.Input(shape=(2,)), *blocks, layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model
