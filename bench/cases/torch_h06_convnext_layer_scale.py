"""Trap (BENCHMARK-CASES section 4): ConvNeXt-style blocks (depthwise 7x7 conv, LayerNorm, 4x MLP
with GELU) whose residual branch ends in a per-channel layer scale initialized to the constant 1e-6,
as torchvision's/Keras' ConvNeXt do. Digits 8x8."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "ConvNeXt layer scale 1e-6 (BENCHMARK-CASES section 4 traps)",
    "gate": True,
}


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 1e-6))

    def forward(self, x):
        h = self.dw(x).permute(0, 2, 3, 1)
        h = self.pw2(self.act(self.pw1(self.norm(h)))) * self.gamma
        return x + h.permute(0, 3, 1, 2)


class TinyConvNeXt(nn.Module):
    def __init__(self, c=32):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 2, stride=2)
        self.blocks = nn.Sequential(Block(c), Block(c), Block(c))
        self.norm = nn.LayerNorm(c)
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        h = self.blocks(self.stem(x)).mean(dim=(2, 3))
        return self.head(self.norm(h))


def build_model():
    return TinyConvNeXt()


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
