"""Healthy control: keras.applications.DenseNet121(weights=None) at 32x32 with its own
``preprocess_input`` (torch mode: /255 then ImageNet mean/std), 8 images. Glorot kernels with ReLU
behind BatchNorm, 120 concatenations."""

import numpy as np
import keras

EXPECT = {
    "raise": [],
    "source": "keras.applications DenseNet121 weights=None (BENCHMARK-CASES section 4)",
}


def build_model():
    m = keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3), classes=10)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(8, 32, 32, 3)).astype(np.float32)
    return keras.applications.densenet.preprocess_input(x), np.arange(8) % 10
