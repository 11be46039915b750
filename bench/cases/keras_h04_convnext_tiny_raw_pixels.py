"""Healthy control / trap: keras.applications.ConvNeXtTiny(weights=None) at 32x32 fed raw 0-255
pixels (it normalizes inside with the ImageNet mean/variance); 18 LayerScale layers initialized to the
constant 1e-6, LayerNorm, GELU, residuals. The slowest case of the corpus (~7 s)."""

import numpy as np
import keras

EXPECT = {
    "raise": [],
    "source": "keras.applications ConvNeXtTiny weights=None (BENCHMARK-CASES section 4: layer scale 1e-6)",
}


def build_model():
    m = keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=10)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(4, 32, 32, 3)).astype(np.float32), np.arange(4) % 10
