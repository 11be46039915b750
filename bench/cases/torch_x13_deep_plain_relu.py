"""A 12-layer plain ReLU MLP (He-normal) with no normalization and no skip connection: fine at
initialization, but nothing keeps the per-layer gain near 1 as training moves the weights (the
lecture: "both may fail when the network is really deep"). Wine (standardized)."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND502"],
    "not": ["ND101", "ND201", "ND203", "ND301", "ND302"],
    "source": "netdoctor catalogue ND502; AUTOTRAINER repair 'add BatchNormalization/skip connections'",
}


def build_model():
    return tk.dense_stack([13] + [32] * 12 + [3], "relu", "he_normal")


def sample_batch():
    x, y = bd.wine()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
