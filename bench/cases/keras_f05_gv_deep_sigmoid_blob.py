"""AUTOTRAINER mutant family "deep sigmoid" (Blob models 2569b90f, bd4e58b7, e706e7cd; DeepDiagnosis:
"Vanishing Gradient in delta weights" at batch 0): 12 hidden Dense(5, sigmoid), He-uniform,
Dense(3, sigmoid) with categorical cross-entropy (the Blob configs' pairing, which is itself a
mismatch), raw blob coordinates."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND301", "ND502", "ND503", "ND101"],
    "not": ["ND302", "ND303", "ND401"],
    "source": "AUTOTRAINER Blob mutants, deep sigmoid (DeepDiagnosis Models_Blob.py; BENCHMARK-CASES F05)",
    "seeds": 2,
}


def build_model():
    m = kk.dense_stack([2] + [5] * 12 + [3], "sigmoid", "he_uniform", out_act="sigmoid")
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.blob()
    return x, bd.one_hot(y, 3)
