"""Softmax over the batch axis (``nn.Softmax(dim=0)``, issue 16): each column sums to 1, each sample's
row does not; the model ranks samples against each other instead of classes. Iris (standardized)."""

import _benchdata as bd
import torch
import torch.nn.functional as F
from torch import nn

EXPECT = {
    "raise": ["ND507"],
    "not": ["ND101", "ND503", "ND506"],
    "source": "issue 16: softmax over the wrong axis",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=0))


def sample_batch():
    x, y = bd.iris(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn(output, target):
    return F.nll_loss(torch.log(output), target)
