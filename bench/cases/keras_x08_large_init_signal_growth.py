"""Kernels at 3x the He standard deviation in a 6-layer plain ReLU MLP: the activation RMS grows ~3x
per layer. The variance is 9x He, inside ND203's 10x band on purpose: only the drift across depth
shows it (TheDeepChecker's activation-std check). Digits/16."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND403"],
    "not": ["ND101", "ND201", "ND202", "ND301"],
    "source": "TheDeepChecker activation-std check; Glorot & Bengio 2010 (signal propagation)",
    "seeds": 2,
}


def build_model():
    init = keras.initializers.VarianceScaling(scale=18.0, mode="fan_in", distribution="untruncated_normal")
    stack = [keras.Input((64,))] + [layers.Dense(64, activation="relu", kernel_initializer=init) for _ in range(6)]
    m = keras.Sequential(stack + [layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.digits()
