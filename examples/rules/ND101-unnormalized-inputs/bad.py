"""ND101 unnormalized-inputs (bad): raw breast-cancer features reach the first Linear layer.

'worst area' is in the thousands, 'smoothness' around 0.1: the first layer's gradient is
dominated by the large columns. Run: ``netdoctor check examples/rules/ND101-unnormalized-inputs/bad.py``.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_breast_cancer
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))


def sample_batch():
    data = load_breast_cancer()
    x = torch.tensor(data.data[:256], dtype=torch.float32)  # raw: no scaling at all
    y = torch.tensor(data.target[:256])
    return x, y


loss_fn = nn.CrossEntropyLoss()
