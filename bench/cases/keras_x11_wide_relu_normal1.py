"""256-wide ReLU MLP initialized N(0, 1) (the Keras form of torch_x19; TheDeepChecker wrong_init
"too large"): each layer multiplies the signal by ~11. Ground truth for ND302, measured with plain
Keras: one SGD step at lr 0.01 from initialization multiplies the loss by 11-18x (seeds 0, 1).
Digits/16."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND302", "ND203"],
    "not": ["ND101", "ND201", "ND301"],
    "source": "TheDeepChecker wrong_init (too-large random init); netdoctor catalogue ND302",
    "gate": True,
}


def build_model():
    m = kk.dense_stack([64, 256, 256, 256, 10], "relu", "normal1", out_act="softmax")
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.digits()
