"""Sigmoid output into ``nn.BCEWithLogitsLoss`` (sigmoid applied twice; NeuraLint
TF_lenet_double_activation / wrong_loss_inputs). Standardized breast cancer."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND201", "ND301", "ND401"],
    "source": "NeuraLint Synthetic Samples TF_lenet_wrong_loss_inputs / double_activation",
}


def build_model():
    return nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCEWithLogitsLoss()
