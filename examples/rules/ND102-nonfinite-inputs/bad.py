"""ND102 nonfinite-inputs (bad): missing values (NaN) left in tabular data."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_wine
from torch import nn


def sample_batch():
    data = load_wine()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    rng = np.random.default_rng(0)
    x[rng.random(x.shape) < 0.02] = np.nan  # 2% missing measurements
    return torch.tensor(x, dtype=torch.float32), torch.tensor(data.target)


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))


loss_fn = nn.CrossEntropyLoss()
