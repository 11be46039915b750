"""ND204 nonfinite-weights (bad): a checkpoint saved after training diverged.

The "checkpoint" below stands in for ``torch.load("last.pt")`` written after the loss became
NaN: one entry of ``fc1.weight`` and BatchNorm's running variance are non-finite.
"""

from __future__ import annotations

import torch
from sklearn.datasets import make_blobs
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))
    state = model.state_dict()
    state["0.weight"][3, 1] = float("nan")      # the corrupted checkpoint
    state["1.running_var"][5] = float("inf")
    model.load_state_dict(state)
    return model


def sample_batch():
    x, y = make_blobs(n_samples=256, centers=3, n_features=4, random_state=0)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


loss_fn = nn.CrossEntropyLoss()
