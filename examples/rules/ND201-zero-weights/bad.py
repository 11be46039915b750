"""ND201 zero-weights (bad): a hidden layer initialized to zeros.

``fc2`` starts as the zero matrix: no gradient reaches ``fc1`` and all 64 units of ``fc2``
compute the same value, so they stay identical.
"""

from __future__ import annotations

import torch
from sklearn.datasets import make_blobs
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 64)
        self.fc2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 3)
        nn.init.zeros_(self.fc2.weight)  # the fault

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return Net()


def sample_batch():
    x, y = make_blobs(n_samples=256, centers=3, n_features=4, random_state=0)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


loss_fn = nn.CrossEntropyLoss()
