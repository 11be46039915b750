"""ND303 nonfinite-gradients (good): bounded-growth ReLU activations instead of exp."""

from __future__ import annotations

import torch
from sklearn.datasets import make_blobs
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
    return model


def sample_batch():
    x, y = make_blobs(n_samples=256, centers=3, n_features=2, cluster_std=2, random_state=2)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


loss_fn = nn.CrossEntropyLoss()
