"""Healthy control: a small digits CNN (conv-ReLU-pool x2, no normalization, PyTorch default init)
trained 5 epochs with Adam, then checked on a held batch."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "NeuraLint TF_lenet.py (clean base program) on digits (BENCHMARK-CASES H06)",
}


def build_model():
    m = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4, 64), nn.ReLU(), nn.Dropout(0.25), nn.Linear(64, 10),
    )
    x, y = bd.digits_all()
    return tk.fit(m, x.reshape(-1, 1, 8, 8), y, nn.CrossEntropyLoss(), lr=2e-3, epochs=5, batch=64)


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
