"""ND503 output-loss-mismatch (bad): a Softmax layer feeding CrossEntropyLoss.

``CrossEntropyLoss`` applies log-softmax itself; the extra softmax squashes the logits into
[0, 1] and the gradients become tiny.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch import nn


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))


def sample_batch():
    d = load_digits()
    return torch.tensor(d.data[:256] / 16, dtype=torch.float32), torch.tensor(d.target[:256])


loss_fn = nn.CrossEntropyLoss()
