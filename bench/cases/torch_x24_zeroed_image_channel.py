"""An image pipeline zeroed one colour channel (a wrong channel index in a conversion): synthetic 3x8x8
"RGB" digits whose blue channel is all zeros. The constant channel carries no information (info)."""

import numpy as np
import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND103"],
    "not": ["ND101", "ND102", "ND201", "ND401"],
    "source": "netdoctor catalogue ND103 ('an image channel that was zeroed')",
}


def build_model():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10))


def sample_batch():
    x, y = bd.digits()
    img = x.reshape(-1, 1, 8, 8)
    rgb = np.concatenate([img, 1.0 - img, np.zeros_like(img)], axis=1).astype(np.float32)
    return torch.from_numpy(rgb), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
