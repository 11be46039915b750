"""Hand-written cross-entropy on raw logits with a clamp (issue 16): ``-log(clamp(z[y], 1e-16, 1))``.
Every sample whose target logit is above 1 gets no gradient, the others the clamp's constant; the loss
starts far above ln 10. Digits."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND505"],
    "not": ["ND101", "ND303", "ND503"],
    "source": "issue 16: clamped hand-written cross-entropy on logits",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def sample_batch():
    x, y = bd.digits(scale=1.0 / 4.0)
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn(output, target):
    picked = torch.gather(output, 1, target[:, None]).clamp(1e-16, 1.0)
    return -torch.log(picked).mean()
