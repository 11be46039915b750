"""A corrupted checkpoint: one NaN in a hidden weight matrix (defects4ML 013 checkpoint-load bug;
netdoctor catalogue ND204). Digits/16 MLP. Every activation after that layer and every gradient is
NaN."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND204", "ND303"],
    "not": ["ND101", "ND201", "ND202", "ND401"],
    "source": "defects4ML 013 (wrong init via checkpoint load); netdoctor catalogue ND204",
    "gate": True,
}


def build_model():
    m = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        m[2].weight[3, 7] = float("nan")
    return m


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
