"""A hand-written binary log-loss on a linear head (issue 16): ``-(y log p + (1 - y) log(1 - p))`` on an
unbounded output: the log of negative values and of values above 1 makes the loss NaN. Breast cancer
(standardized)."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND503", "ND303"],
    "not": ["ND101"],
    "source": "issue 16: hand-written log-loss on an unbounded output (NaN loss)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y.astype("float32")).reshape(-1, 1)


def loss_fn(p, t):
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
