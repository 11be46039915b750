"""TheDeepChecker wrong_init/deepCNN_random: kernels N(0, 0.25^2) instead of He-normal. The second
5x5 conv has fan-in 800 (He std 0.05): its variance is 25x He. Digits 8x8."""

import _benchdata as bd
import keras
from keras import layers

EXPECT = {
    "raise": ["ND203"],
    "not": ["ND201", "ND202", "ND101", "ND301"],
    "source": "TheDeepChecker buggy_synthetic_programs/wrong_init/*_random (BENCHMARK-CASES F27)",
}


def build_model():
    init = keras.initializers.RandomNormal(0.0, 0.25)
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu", kernel_initializer=init),
        layers.Conv2D(64, 5, padding="same", activation="relu", kernel_initializer=init),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(10, activation="softmax", kernel_initializer=init),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.digits()
    return x.reshape(-1, 8, 8, 1), y
