"""Hand-written cross-entropy applied to raw logits (defects4ML 001/003/004 "wrong loss calculation"):
``-(onehot * log(output)).sum()`` where the model has no softmax, so ``log`` of negative logits is
NaN. Iris (standardized)."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND303"],
    "not": ["ND101", "ND201", "ND401", "ND102"],
    "source": "defects4ML 001/003/004 (hand-written cross-entropy -> NaN)",
}


def build_model():
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def sample_batch():
    x, y = bd.iris(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(bd.one_hot(y, 3))


def loss_fn(output, target):
    return -(target * torch.log(output)).sum(dim=1).mean()
