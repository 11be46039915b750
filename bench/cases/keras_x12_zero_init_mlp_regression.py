"""TheDeepChecker wrong_init, zero kernels in the regrNN: standardized diabetes, two Dense(64, relu)
with kernel_initializer="zeros", linear output, MSE. Trap: the zero activations are not dead ReLUs."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND201"],
    "not": ["ND101", "ND203", "ND401", "ND301"],
    "source": "TheDeepChecker buggy_synthetic_programs/wrong_init (regrNN); NeuraLint zeros_init",
}


def build_model():
    m = kk.dense_stack([10, 64, 64, 1], "relu", "zeros", out_init="glorot_uniform")
    m.compile(optimizer="adam", loss="mse")
    return m


def sample_batch():
    return bd.diabetes(scaled=True, target_scaled=True)
