"""Softmax as a hidden activation (issue 16): 64 -> 64 softmax -> 64 softmax -> 10 logits on digits;
the hidden softmaxes squash the representation onto a simplex and shrink every gradient below them."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND508"],
    "not": ["ND503", "ND505", "ND506", "ND507"],
    "source": "issue 16: softmax used as a hidden activation",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.Softmax(dim=1), nn.Linear(64, 64), nn.Softmax(dim=1), nn.Linear(64, 10))


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
