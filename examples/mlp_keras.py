"""A Keras 3 digit classifier with two classic faults. Run: ``netdoctor check examples/mlp_keras.py``.

Fault 1: raw pixel values (0..255) go straight into the first Dense layer.
Fault 2: the model ends in a softmax, but the loss is told it receives logits
(``from_logits=True``), so softmax is applied twice and the gradients are wrong.

The fix for both is in the docstring of each rule: ``netdoctor explain ND101`` / ``ND503``.
"""

from __future__ import annotations

import keras
import numpy as np


def build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu", kernel_initializer="he_normal", name="hidden1"),
            keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal", name="hidden2"),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="digits_mlp",
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),  # fault 2
    )
    return model


def sample_batch() -> tuple[np.ndarray, np.ndarray]:
    """8x8 grey-level "digits": blobs of ink on a 0..255 canvas, unscaled (fault 1)."""
    rng = np.random.default_rng(0)
    n = 256
    labels = rng.integers(0, 10, n)
    ys, xs = np.mgrid[0:8, 0:8]
    images = np.empty((n, 64), dtype=np.float32)
    for i, label in enumerate(labels):
        cy, cx = 2 + label % 4, 2 + label // 3
        blob = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 4.0)
        images[i] = np.clip(255 * blob + rng.normal(0, 20, (8, 8)), 0, 255).ravel()
    return images, labels
