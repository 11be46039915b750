"""ND203 init-scale (bad): Keras-2-era ``U(-0.05, 0.05)`` kernels on narrow ReLU layers.

With 16 inputs per unit, He initialization wants a variance of 2/16 = 0.125; U(+-0.05) gives
8.3e-4, 150 times less, so each layer shrinks the signal about 8-fold.
"""

from __future__ import annotations

import torch
from sklearn.datasets import make_circles
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.05, 0.05)  # the fault
            nn.init.zeros_(m.bias)
    return model


def sample_batch():
    x, y = make_circles(n_samples=256, noise=0.1, factor=0.5, random_state=1)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).unsqueeze(1)


loss_fn = nn.BCEWithLogitsLoss()
