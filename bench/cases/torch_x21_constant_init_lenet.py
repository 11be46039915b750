"""NeuraLint Synthetic Samples TF_lenet_constant_init, torch form: conv and hidden dense kernels set
to the constant 0.1, so all filters/units of each layer are identical forever. Digits 8x8."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND202"],
    "not": ["ND101", "ND201", "ND401"],
    "source": "NeuraLint Synthetic Samples TF_lenet_constant_init.py (BENCHMARK-CASES F26)",
}


def build_model():
    m = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    for i in (0, 3, 7):
        nn.init.constant_(m[i].weight, 0.1)
    return m


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
