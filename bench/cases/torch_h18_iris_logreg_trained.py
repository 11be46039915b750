"""Healthy control (BENCHMARK-CASES F16 fixed: scaled iris, softmax classifier): standardized iris,
4 -> 16 ReLU -> 3 logits, trained 60 epochs with Adam; cross-entropy."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "DeepLocalize SO 59278771 Correct Code (BENCHMARK-CASES F16 fix)",
}


def build_model():
    m = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = bd.iris(scaled=True)
    return tk.fit(m, x, y, nn.CrossEntropyLoss(), lr=1e-2, epochs=60, batch=16)


def sample_batch():
    x, y = bd.iris(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
