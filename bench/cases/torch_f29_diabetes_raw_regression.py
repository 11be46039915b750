"""TheDeepChecker missing_normalization/regrNN_miss_norm (auto-mpg unscaled), re-expressed on
load_diabetes(scaled=False): raw clinical features (age 19-79, s1 97-301, bmi 18-42) into the
regrNN architecture (two Dense(64)+ReLU, He-normal, linear output, MSE)."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND101"],
    "not": ["ND201", "ND202", "ND203", "ND502"],
    "source": "TheDeepChecker missing_normalization/regrNN_miss_norm (BENCHMARK-CASES F29)",
    "gate": True,
}


def build_model():
    return tk.dense_stack([10, 64, 64, 1], "relu", "he_normal")


def sample_batch():
    x, y = bd.diabetes(scaled=False, target_scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.MSELoss()
