"""A 12-layer plain ReLU MLP (He-normal) with no normalization and no skip connection (the lecture's
"both may fail when the network is really deep"; AUTOTRAINER's BN-insertion repair). Standardized wine."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND502"],
    "not": ["ND101", "ND201", "ND203", "ND301", "ND302"],
    "source": "netdoctor catalogue ND502; AUTOTRAINER repair 'add BatchNormalization'",
}


def build_model():
    m = kk.dense_stack([13] + [32] * 12 + [3], "relu", "he_normal", out_act="softmax")
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.wine()
