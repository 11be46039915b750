"""A regression loss summed over the batch (issue 16): diabetes (standardized target) with a hand-written
``((p - t) ** 2).sum()``: the gradient, and so the step of SGD, grows with the batch size."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND510"],
    "not": ["ND101", "ND503"],
    "source": "issue 16: summed squared error over the batch (reduction='sum' regression)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    x, y = bd.diabetes(scaled=True, target_scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn(p, t):
    return ((p - t) ** 2).sum()
