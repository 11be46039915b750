"""Healthy control (issue 16): a hand-written but correct cross-entropy, ``-log(softmax)[y]`` computed
with a clamp far below any reachable probability, on a model ending in softmax. Iris (standardized)."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "issue 16: healthy hand-written cross-entropy on probabilities",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3), nn.Softmax(dim=1))


def sample_batch():
    x, y = bd.iris(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn(probs, target):
    return -torch.log(probs.gather(1, target[:, None]).clamp_min(1e-12)).mean()
