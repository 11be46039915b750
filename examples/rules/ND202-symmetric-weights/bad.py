"""ND202 symmetric-weights (bad): every kernel initialized to the constant 0.01.

All units of a layer compute the same value and receive the same update: the 64-unit layers
behave like one unit (NeuraLint's and TheDeepChecker's constant-init mutants).
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.01)  # the fault
            nn.init.zeros_(m.bias)
    return model


def sample_batch():
    d = load_digits()
    return torch.tensor(d.data[:256] / 16, dtype=torch.float32), torch.tensor(d.target[:256])


loss_fn = nn.CrossEntropyLoss()
