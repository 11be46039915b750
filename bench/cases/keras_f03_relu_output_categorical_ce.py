"""AUTOTRAINER's improper-activation demo (demo_case/Improper_Activation_case): Blob data; 4 x
Dense(50, relu) He-uniform -> Dense(3, relu) output with categorical cross-entropy (which expects
probabilities), Adam 1e-4. Raw blob coordinates as in the original."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND503", "ND101"],
    "not": ["ND201", "ND202", "ND301"],
    "source": "AUTOTRAINER demo_case/Improper_Activation_case/demo_activation.py (BENCHMARK-CASES F03)",
    "gate": True,
}


def build_model():
    m = kk.dense_stack([2, 50, 50, 50, 50, 3], "relu", "he_uniform", out_act="relu")
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.blob()
    return x, bd.one_hot(y, 3)
