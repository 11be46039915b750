"""ND103 constant-feature (bad): a column of ones was appended to the features ("bias column")."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_wine
from torch import nn


def sample_batch():
    data = load_wine()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    x = np.column_stack([x, np.ones(len(x))])  # constant: the Linear layer has a bias already
    return torch.tensor(x, dtype=torch.float32), torch.tensor(data.target)


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(14, 32), nn.ReLU(), nn.Linear(32, 3))


loss_fn = nn.CrossEntropyLoss()
