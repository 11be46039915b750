"""Trap (catalogue ND502/ND203): a 10-layer self-normalizing network - SELU activations with LeCun
normal initialization (Klambauer et al. 2017), designed to run deep without normalization layers.
Standardized wine."""

import math

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "Klambauer et al., Self-Normalizing Neural Networks (2017); netdoctor catalogue ND502 SELU exemption",
}


def build_model():
    mods = []
    sizes = [13] + [64] * 10
    for a, b in zip(sizes[:-1], sizes[1:]):
        lin = nn.Linear(a, b)
        nn.init.normal_(lin.weight, 0.0, 1.0 / math.sqrt(a))
        nn.init.zeros_(lin.bias)
        mods += [lin, nn.SELU()]
    head = nn.Linear(64, 3)
    nn.init.normal_(head.weight, 0.0, 1.0 / 8.0)
    return nn.Sequential(*mods, head)


def sample_batch():
    x, y = bd.wine()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
