"""Healthy control: the lecture's Keras example - HeNormal ReLU Dense layers each followed by
BatchNormalization, softmax head, sparse categorical cross-entropy. Digits/16. (Dense bias before BN:
ND504 is info.)"""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": [],
    "source": "shared/seed lecture Keras example (RULES.md: 'the picture users have in mind')",
    "seeds": 2,
    "gate": True,
}


def build_model():
    stack = [keras.Input((64,))]
    for _ in range(4):
        stack += [layers.Dense(128, kernel_initializer="he_normal"), layers.BatchNormalization(), layers.Activation("relu")]
    m = keras.Sequential(stack + [layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.digits()
