"""ND504 bias-before-batchnorm (good): ``bias=False`` on convolutions followed by BatchNorm."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def sample_batch():
    d = load_digits()
    x = torch.tensor(d.data[:128] / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
    return x, torch.tensor(d.target[:128])


loss_fn = nn.CrossEntropyLoss()
