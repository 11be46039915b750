"""Trap (catalogue ND502/ND203): a 10-layer self-normalizing Keras network - Dense(64, selu) with
lecun_normal kernels, no normalization layers, as Klambauer et al. (2017) designed. Standardized
wine."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": [],
    "source": "Klambauer et al., Self-Normalizing Neural Networks (2017); Keras 'selu' + 'lecun_normal'",
}


def build_model():
    m = kk.dense_stack([13] + [64] * 10 + [3], "selu", "lecun_normal", out_act="softmax")
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.wine()
