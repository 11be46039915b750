"""ND203 init-scale (good): He initialization matched to the ReLU that follows."""

from __future__ import annotations

import torch
from sklearn.datasets import make_circles
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def sample_batch():
    x, y = make_circles(n_samples=256, noise=0.1, factor=0.5, random_state=1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).unsqueeze(1)


loss_fn = nn.BCEWithLogitsLoss()
