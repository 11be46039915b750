"""ND202 symmetric-weights (good): random He initialization breaks the symmetry."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def sample_batch():
    d = load_digits()
    return torch.tensor(d.data[:256] / 16, dtype=torch.float32), torch.tensor(d.target[:256])


loss_fn = nn.CrossEntropyLoss()
