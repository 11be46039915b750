"""AUTOTRAINER mutant family "tiny-uniform init deep ReLU" (Circle 10702695, 14989730, ...): 8
hidden Dense(5, relu) with Keras 2's RandomUniform(-0.05, 0.05), He-uniform sigmoid output, binary
cross-entropy. All gradients ~1e-11 with a first/last ratio ~8: AUTOTRAINER's ratio rule misses it."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND301", "ND203", "ND403", "ND502"],
    "not": ["ND101", "ND302", "ND303"],
    "source": "AUTOTRAINER Circle mutants, RandomUniform(+-0.05) deep ReLU (BENCHMARK-CASES F06)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    m = kk.dense_stack([2] + [5] * 8 + [1], "relu", "uniform005", out_act="sigmoid", out_init="he_uniform")
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def sample_batch():
    x, y = bd.circle()
    return x, y[:, None]
