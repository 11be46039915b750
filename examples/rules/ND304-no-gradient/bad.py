"""ND304 no-gradient (bad): the encoder's output is detached, so the encoder never learns."""

from __future__ import annotations

import torch
from sklearn.datasets import make_blobs
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x).detach()  # the fault: cuts the graph
        return self.head(features)


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return Net()


def sample_batch():
    x, y = make_blobs(n_samples=256, centers=3, n_features=4, random_state=0)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


loss_fn = nn.CrossEntropyLoss()
