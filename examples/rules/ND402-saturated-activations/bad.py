"""ND402 saturated-activations (bad): raw inputs in [-100, 100] into sigmoid units (SO 52800582).

Most first-layer pre-activations are far beyond +-5, where the sigmoid is flat.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, 50), nn.Sigmoid(), nn.Linear(50, 50), nn.ELU(), nn.Linear(50, 1))


def sample_batch():
    x = np.arange(-100, 100, 0.5, dtype=np.float32)[:, None]
    y = (x / 100.0) ** 4  # targets kept in [0, 1]; the inputs are the problem
    return torch.tensor(x), torch.tensor(y)


loss_fn = nn.MSELoss()
