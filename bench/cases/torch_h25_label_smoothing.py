"""Healthy control (issue 16): a correct custom classification loss, cross-entropy with label
smoothing 0.1, written by hand on logits. Digits, 64 -> 64 ReLU -> 10."""

import _benchdata as bd
import torch
import torch.nn.functional as F
from torch import nn

EXPECT = {
    "raise": [],
    "source": "issue 16: healthy custom loss (label smoothing)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn(logits, target, eps=0.1):
    logp = F.log_softmax(logits, dim=1)
    smooth = torch.full_like(logp, eps / logits.shape[1]).scatter_(1, target[:, None], 1 - eps + eps / logits.shape[1])
    return -(smooth * logp).sum(dim=1).mean()
