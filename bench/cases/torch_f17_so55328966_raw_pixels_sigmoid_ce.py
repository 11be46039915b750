"""SO 55328966 (DeepLocalize; defects4ML 100 "NaN after some epochs because pixels are not
normalized"): raw 0-255 pixels (digits x 16), Dense(64) linear -> Dense(50)+ReLU -> Dense(10)+sigmoid,
trained with cross-entropy (which wants logits in torch: the sigmoid squashes them)."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND101", "ND503"],
    "not": ["ND201", "ND202"],
    "source": "SO 55328966 via DeepLocalize/DeepFD, defects4ML 100 (BENCHMARK-CASES F17)",
}


def build_model():
    return nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 50), nn.ReLU(), nn.Linear(50, 10), nn.Sigmoid())


def sample_batch():
    x, y = bd.digits(scale=16.0)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
