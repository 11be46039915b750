"""AUTOTRAINER mutant family "deep narrow ReLU" (Circle model_8e28bdef 16 layers, Blob 84c77206):
16 hidden Dense(5, relu), He-uniform, sigmoid output, binary cross-entropy. Whether some layer is
mostly dead at initialization depends on the seed."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND401", "ND502"],
    "not": ["ND101", "ND303"],
    "source": "AUTOTRAINER Circle mutants, 16 x Dense(5) ReLU (BENCHMARK-CASES F07)",
    "seeds": 5,
    "note": "stochastic: the recipe measured a layer >50% dead on all samples in 9 of 10 seeds at init",
}


def build_model():
    m = kk.dense_stack([2] + [5] * 16 + [1], "relu", "he_uniform", out_act="sigmoid")
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def sample_batch():
    x, y = bd.circle()
    return x, y[:, None]
