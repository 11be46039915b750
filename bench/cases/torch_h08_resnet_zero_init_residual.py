"""Trap (BENCHMARK-CASES section 4): a small ResNet with ``zero_init_residual`` - the last BatchNorm
gamma of every residual block is zero, so each block starts as the identity (Goyal et al. 2017).
Conv layers have no bias (torchvision style). Digits 8x8."""

import _benchdata as bd
import torch
from torch import nn


class Basic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        nn.init.kaiming_normal_(self.conv2.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.bn2.weight)  # zero_init_residual

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(h)))


class TinyResNet(nn.Module):
    def __init__(self, c=32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.layers = nn.Sequential(Basic(c), Basic(c), Basic(c), Basic(c))
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))


EXPECT = {
    "raise": [],
    "not": ["ND504"],
    "source": "torchvision resnet zero_init_residual=True (BENCHMARK-CASES section 4 traps)",
    "gate": True,
}


def build_model():
    return TinyResNet()


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
