"""Trap (BENCHMARK-CASES section 4): VGG-style classifier initialization - conv kernels He
(fan_out), linear layers N(0, 0.01) as torchvision's VGG/MobileNet do on purpose. Digits 8x8, two
conv blocks, a 3-layer classifier with dropout."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "torchvision VGG _initialize_weights (linear N(0, 0.01)) (BENCHMARK-CASES section 4 traps)",
}


def build_model():
    m = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 128), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(128, 10),
    )
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, 0.0, 0.01)
            nn.init.zeros_(mod.bias)
    return m


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
