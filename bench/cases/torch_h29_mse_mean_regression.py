"""Healthy control for the loss-semantics family (issue 16): diabetes (standardized target), linear head,
``nn.MSELoss()`` with its mean reduction."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "not": ["ND503", "ND505", "ND510", "ND302", "ND303"],
    "source": "issue 16 healthy control: regression with mean MSE",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    x, y = bd.diabetes(scaled=True, target_scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.MSELoss()
