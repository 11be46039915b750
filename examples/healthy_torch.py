"""The credit-scoring task of ``mlp_torch.py`` done right: standardized inputs, ReLU with He init.

Run: ``netdoctor check examples/healthy_torch.py`` (exit code 0).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mlp_torch import raw_credit_data  # the model file's folder is importable


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 2),
    )
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")  # He init for ReLU
            nn.init.zeros_(module.bias)
    nn.init.xavier_normal_(model[-1].weight)  # the output layer feeds no ReLU
    return model


def sample_batch() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = raw_credit_data()
    x = (x - x.mean(axis=0)) / x.std(axis=0)  # standardize each feature
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
