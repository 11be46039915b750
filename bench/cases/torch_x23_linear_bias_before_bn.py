"""Linear layers with a bias feeding BatchNorm1d (NeuraLint "useless bias"): the batch-mean
subtraction cancels the bias (info). Otherwise a healthy breast-cancer MLP."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND504"],
    "not": ["ND101", "ND201", "ND203", "ND301", "ND401", "ND501"],
    "source": "NeuraLint Synthetic Samples TF_lenet_useless_bias.py (dense part)",
}


def build_model():
    return nn.Sequential(nn.Linear(30, 64), nn.BatchNorm1d(64), nn.ReLU(),
                         nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCEWithLogitsLoss()
