"""A sigmoid output regressed onto targets in [-1, 1] (issue 16): half the targets are out of reach and
the smallest MSE the sigmoid can reach is ~0.5x the target variance. Diabetes features (standardized),
target rescaled to [-1, 1]."""

import _benchdata as bd
import numpy as np
import torch
from torch import nn

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND505", "ND506"],
    "source": "issue 16: sigmoid output for targets in [-1, 1] (unreachable targets)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())


def sample_batch():
    x, y = bd.diabetes(scaled=True)
    y = 2 * (y - y.min()) / (y.max() - y.min()) - 1
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)


loss_fn = nn.MSELoss()
