"""ND502 deep-without-normalization (good): a BatchNorm after every hidden Linear layer."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width = 64
    for _ in range(10):
        layers += [nn.Linear(width, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU()]
        width = 32
    model = nn.Sequential(*layers, nn.Linear(32, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def sample_batch():
    d = load_digits()
    return torch.tensor(d.data[:256] / 16, dtype=torch.float32), torch.tensor(d.target[:256])


loss_fn = nn.CrossEntropyLoss()
