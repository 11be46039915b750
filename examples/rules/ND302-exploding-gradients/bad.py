"""ND302 exploding-gradients (bad): N(0, 1) weights on 256-wide ReLU layers.

He initialization would use a standard deviation of sqrt(2/256) = 0.09; with 1.0 every layer
multiplies the signal by about 11, and the gradient of the first layer is thousands of times
its weight norm.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256),
                          nn.ReLU(), nn.Linear(256, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)  # the fault
            nn.init.zeros_(m.bias)
    return model


def sample_batch():
    d = load_digits()
    return torch.tensor(d.data[:256] / 16, dtype=torch.float32), torch.tensor(d.target[:256])


loss_fn = nn.CrossEntropyLoss()
