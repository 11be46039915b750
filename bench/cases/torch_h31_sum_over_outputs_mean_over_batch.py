"""Healthy control (issue 16): a multi-output regression whose loss sums the squared error over the
three outputs and averages over the batch, ``((p - t) ** 2).sum(1).mean()``: a sum per sample is not a
sum over the batch. Linnerud (standardized), tiled to 40 rows."""

import _benchdata as bd
import numpy as np
import torch
from sklearn.datasets import load_linnerud
from torch import nn

EXPECT = {
    "raise": [],
    "not": ["ND503", "ND510", "ND302"],
    "source": "issue 16 healthy control: sum over output dims, mean over the batch",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 3))


def sample_batch():
    d = load_linnerud()
    x, y = bd.standardize(d.data), bd.standardize(d.target)
    return torch.from_numpy(np.tile(x, (2, 1))), torch.from_numpy(np.tile(y, (2, 1)))


def loss_fn(p, t):
    return ((p - t) ** 2).sum(1).mean()
