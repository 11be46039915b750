"""Healthy control (BENCHMARK-CASES H06, torchvision-style): conv -> BN -> ReLU blocks without conv
bias, global pooling, then Dropout(0.5) in the classifier head after the last BatchNorm - the accepted
placement (BN and Dropout co-occur, Dropout never feeds a BN). Digits 8x8."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "not": ["ND504"],
    "source": "NeuraLint TF_lenet.py ordering; torchvision mobilenet/efficientnet heads (BENCHMARK-CASES H06, section 4)",
    "gate": True,
}


def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 10),
    )


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
