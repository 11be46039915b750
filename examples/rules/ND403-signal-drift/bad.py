"""ND403 signal-drift (bad): weights at 0.4x the He scale shrink the signal layer after layer.

Each ReLU layer passes on about 40% of the signal scale; after eight layers the activations
are a few hundredths of a percent of where they started.
"""

from __future__ import annotations

import math

import torch
from sklearn.datasets import load_digits
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width = 64
    for _ in range(8):
        layers += [nn.Linear(width, 64), nn.ReLU()]
        width = 64
    model = nn.Sequential(*layers, nn.Linear(64, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.4 * math.sqrt(2 / m.in_features))  # the fault
            nn.init.zeros_(m.bias)
    return model


def sample_batch():
    d = load_digits()
    x = (d.data[:256] - d.data.mean(0)) / (d.data.std(0) + 1e-8)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(d.target[:256])


loss_fn = nn.CrossEntropyLoss()
