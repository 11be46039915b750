"""ND301 vanishing-gradients (good): the same depth with BatchNorm and ReLU, He initialization."""

from __future__ import annotations

import torch
from sklearn.datasets import make_circles
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width = 2
    for _ in range(8):
        layers += [nn.Linear(width, 5, bias=False), nn.BatchNorm1d(5), nn.ReLU()]
        width = 5
    model = nn.Sequential(*layers, nn.Linear(5, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def sample_batch():
    x, y = make_circles(n_samples=256, noise=0.1, random_state=1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).unsqueeze(1)


loss_fn = nn.BCEWithLogitsLoss()
