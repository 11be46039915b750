"""Softmax applied twice, then a log loss (issue 16): the outer softmax sees values in [0, 1], so no
output can exceed e/(e+9) = 0.23 and the loss cannot fall below 1.46. Digits, 10 classes."""

import _benchdata as bd
import torch
import torch.nn.functional as F
from torch import nn

EXPECT = {
    "raise": ["ND506"],
    "not": ["ND503", "ND101", "ND507", "ND508"],
    "source": "issue 16: softmax twice then a log loss (DeepDiagnosis double-softmax family)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1), nn.Softmax(dim=1))


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn(output, target):
    return F.nll_loss(torch.log(output), target)
