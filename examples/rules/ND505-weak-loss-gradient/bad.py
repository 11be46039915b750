"""ND505 weak-loss-gradient (bad): MSE on softmax probabilities against one-hot targets.

The softmax Jacobian shrinks the error: the logits get ~0.02x the gradient cross-entropy sends.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn


def sample_batch():
    d = load_digits()
    return torch.tensor(d.data[:256] / 16, dtype=torch.float32), torch.tensor(d.target[:256])



def build_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))


def loss_fn(probs, target):
    return F.mse_loss(probs, F.one_hot(target, 10).float())
