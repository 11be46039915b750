"""A loss summed over the batch instead of averaged (issue 16, reduction bugs): ``CrossEntropyLoss(
reduction="sum")`` sends 256x the gradient of the mean on a 256-sample batch, so the step size grows
with the batch size. Digits."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND510"],
    "not": ["ND101", "ND503", "ND505"],
    "source": "issue 16: reduction bug (sum instead of mean)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss(reduction="sum")
