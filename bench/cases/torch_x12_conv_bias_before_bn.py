"""NeuraLint TF_lenet_useless_bias, torch form: every conv has a bias and feeds a BatchNorm, which
subtracts the batch mean and so cancels it (harmless, info level). Otherwise a healthy digits CNN."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND504"],
    "not": ["ND101", "ND201", "ND203", "ND301", "ND302", "ND401", "ND501"],
    "source": "NeuraLint Synthetic Samples TF_lenet_useless_bias (BENCHMARK-CASES H06 note)",
    "gate": True,
}


def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 16, 10),
    )


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
