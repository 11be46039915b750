"""Healthy control / trap: keras.applications.EfficientNetB0(weights=None) at 32x32 fed raw 0-255
pixels, which is correct: the model starts with Rescaling(1/255) + Normalization. Also BN -> Dropout
adjacency (stochastic depth) and VarianceScaling(2, fan_out) kernels."""

import numpy as np
import keras

EXPECT = {
    "raise": [],
    "source": "keras.applications EfficientNetB0 weights=None (BENCHMARK-CASES section 4: in-model rescaling)",
}


def build_model():
    m = keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=10)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(8, 32, 32, 3)).astype(np.float32), np.arange(8) % 10
