"""Healthy control / trap: keras.applications.MobileNetV3Small(weights=None) at 32x32 fed raw 0-255
pixels (correct: it rescales inside with Rescaling(1/127.5, offset=-1)); hard-swish, squeeze-excite,
residuals."""

import numpy as np
import keras

EXPECT = {
    "raise": [],
    "source": "keras.applications MobileNetV3Small weights=None (BENCHMARK-CASES section 4: in-model rescaling)",
    "gate": True,
}


def build_model():
    m = keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(8, 32, 32, 3)).astype(np.float32), np.arange(8) % 10
