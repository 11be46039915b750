"""AUTOTRAINER mutant family "exponential activations" (Blob models 0b6f114d, 9b8bdaab, 0448d813,
661b4e86, e73037c2; DeepDiagnosis: "Numerical Problem Forward, batch 0, layer 0"): 9 hidden Dense(5,
exponential), He-uniform, Dense(3, sigmoid) with categorical cross-entropy (as the Blob configs use).
The activations overflow to Inf; loss and gradients are NaN. Raw blob coordinates."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND303", "ND503", "ND502", "ND101"],
    "not": ["ND201", "ND401"],
    "source": "AUTOTRAINER Blob mutants, exponential activations (DeepDiagnosis Models_Blob.py; BENCHMARK-CASES F04)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    m = kk.dense_stack([2] + [5] * 9 + [3], "exponential", "he_uniform", out_act="sigmoid")
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.blob()
    return x, bd.one_hot(y, 3)
