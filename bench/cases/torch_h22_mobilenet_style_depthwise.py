"""Healthy control: MobileNetV2-style inverted residual blocks (1x1 expand -> BN -> ReLU6 -> 3x3
depthwise -> BN -> ReLU6 -> 1x1 project -> BN, residual add), conv layers without bias, dropout in the
head after global pooling. Digits 8x8."""

import _benchdata as bd
import torch
from torch import nn


class Inverted(nn.Module):
    def __init__(self, c, expand=4):
        super().__init__()
        e = c * expand
        self.block = nn.Sequential(
            nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e), nn.ReLU6(),
            nn.Conv2d(e, e, 3, padding=1, groups=e, bias=False), nn.BatchNorm2d(e), nn.ReLU6(),
            nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c),
        )

    def forward(self, x):
        return x + self.block(x)


EXPECT = {
    "raise": [],
    "not": ["ND504"],
    "source": "torchvision mobilenet_v2 structure (BENCHMARK-CASES section 4: real-network controls)",
}


def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        Inverted(16), Inverted(16), Inverted(16),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 10),
    )


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
