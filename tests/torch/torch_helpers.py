"""Shared helpers for the torch adapter tests: small real models and a collect shortcut.

A module of its own (not ``conftest``), so that ``from torch_helpers import collect`` finds it
whichever test folders run together."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from netdoctor.adapters import torch as adapter  # noqa: E402
from netdoctor.snapshot import ModelSnapshot, Need, ProbeSettings  # noqa: E402

ALL_NEEDS = frozenset(Need) - {Need.HISTORY, Need.FIT}  # the monitor and the fit probe collect those


def collect(model: nn.Module, inputs: Any = None, targets: Any = None, *, loss_fn: Any = None,
            needs: frozenset[Need] = ALL_NEEDS, input_shape: Any = None, **settings: Any) -> ModelSnapshot:
    """``adapter.collect`` with every need and default settings."""
    return adapter.collect(model, inputs=inputs, targets=targets, loss_fn=loss_fn, needs=needs,
                           settings=ProbeSettings(**settings), input_shape=input_shape)


def names(snap: ModelSnapshot) -> list[str]:
    return [r.name for r in snap.layers]


class BasicBlock(nn.Module):
    """torchvision-style residual block: conv-bn-relu-conv-bn, ``out += identity``, relu."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class FunctionalNet(nn.Module):
    """Activations called as functions in ``forward`` (a Transformer-style MLP block too)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 12)
        self.fc2 = nn.Linear(12, 12)
        self.fc3 = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc1(x))
        h = torch.tanh(self.fc2(h)) + h  # residual around fc2
        h = h.relu()
        return torch.sigmoid(self.fc3(h))
