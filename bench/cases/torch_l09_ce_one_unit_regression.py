"""Cross-entropy on a one-unit regression head (issue 16): diabetes with a standardized float target and
``nn.CrossEntropyLoss``. A softmax over one unit is always 1, so the loss is 0 for every input and no
weight gets a gradient."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND505"],
    "source": "issue 16: cross-entropy over a single output unit for a regression (constant loss)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    x, y = bd.diabetes(scaled=True, target_scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
