"""Healthy control (issue 16): a bounded regression, sigmoid output for targets scaled into [0, 1],
MSE. Diabetes (standardized features, min-max scaled target)."""

import _benchdata as bd
import numpy as np
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "issue 16: healthy bounded regression (sigmoid output, targets in [0, 1])",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())


def sample_batch():
    x, y = bd.diabetes(scaled=True)
    y = (y - y.min()) / (y.max() - y.min())
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)


loss_fn = nn.MSELoss()
