"""ND101 unnormalized-inputs (good): the model standardizes its inputs itself.

A ``Standardize`` module holds the training-set mean and standard deviation as buffers, so the
first Linear layer sees unit-scale features and inference uses the same scaling.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer
from torch import nn


class Standardize(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std.clamp_min(1e-8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _data():
    data = load_breast_cancer()
    return torch.tensor(data.data, dtype=torch.float32), torch.tensor(data.target)


def build_model() -> nn.Module:
    torch.manual_seed(0)
    x, _ = _data()
    return nn.Sequential(Standardize(x.mean(0), x.std(0)), nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))


def sample_batch():
    x, y = _data()
    return x[:256], y[:256]  # raw here: the model normalizes inside


loss_fn = nn.CrossEntropyLoss()
