"""Healthy control: keras.applications.ResNet50(weights=None) at 32x32, 8 images through its own
``preprocess_input`` (caffe mode: BGR, ImageNet mean subtracted, not scaled). Traps: Glorot-uniform
kernels with ReLU, 49 conv biases right before BatchNorm (ND504 is info), residual connections.
ND101 is not scored: caffe-mode inputs (std ~60) are what this network documents as correct, yet far
from unit scale."""

import numpy as np
import keras

EXPECT = {
    "raise": [],
    "allow": ["ND101"],
    "source": "keras.applications ResNet50 weights=None (BENCHMARK-CASES section 4)",
}


def build_model():
    m = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(8, 32, 32, 3)).astype(np.float32)
    return keras.applications.resnet50.preprocess_input(x), np.arange(8) % 10
