"""ND403 signal-drift (good): He initialization keeps the activation scale constant with depth."""

from __future__ import annotations

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
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def sample_batch():
    d = load_digits()
    x = (d.data[:256] - d.data.mean(0)) / (d.data.std(0) + 1e-8)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(d.target[:256])


loss_fn = nn.CrossEntropyLoss()
