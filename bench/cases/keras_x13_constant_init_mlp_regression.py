"""TheDeepChecker wrong_init/regrNN_constant: kernels constant 0.01 in the regrNN (standardized
diabetes, two Dense(64, relu), linear output, MSE)."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND202"],
    "not": ["ND101", "ND201", "ND401"],
    "source": "TheDeepChecker buggy_synthetic_programs/wrong_init/regrNN_constant.py (BENCHMARK-CASES F26)",
}


def build_model():
    m = kk.dense_stack([10, 64, 64, 1], "relu", "const:0.01", out_init="glorot_uniform")
    m.compile(optimizer="adam", loss="mse")
    return m


def sample_batch():
    return bd.diabetes(scaled=True, target_scaled=True)
