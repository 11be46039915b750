"""Healthy control (BENCHMARK-CASES H05, TheDeepChecker clean_base_programs/regrNN): standardized
diabetes features and target, two Dense(64)+ReLU He-normal, linear output, MSE, Adam 1e-3 with L2
1e-5; trained 30 epochs inside build_model."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "TheDeepChecker clean_base_programs/regrNN.py (BENCHMARK-CASES H05)",
}


def build_model():
    m = tk.dense_stack([10, 64, 64, 1], "relu", "he_normal")
    x, y = bd.diabetes(n=442, scaled=True, target_scaled=True)
    return tk.fit(m, x, y, nn.MSELoss(), lr=1e-3, epochs=30, batch=32)


def sample_batch():
    x, y = bd.diabetes(scaled=True, target_scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.MSELoss()
