"""ND501 batchnorm-with-dropout (bad): Dropout placed right before a BatchNorm.

BatchNorm's running variance is learned on the dropped-out signal (up to 2x the variance at
p=0.5) and then applied to the undropped signal at inference.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(),
        nn.Dropout(0.5), nn.BatchNorm1d(128),  # the fault: dropout feeds the BatchNorm
        nn.Linear(128, 10),
    )


def sample_batch():
    d = load_digits()
    return torch.tensor(d.data[:256] / 16, dtype=torch.float32), torch.tensor(d.target[:256])


loss_fn = nn.CrossEntropyLoss()
