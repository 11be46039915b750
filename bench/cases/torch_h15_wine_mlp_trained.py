"""Healthy control: standardized wine (scikit-learn bundled), 13 -> 32 -> 32 -> 3 ReLU MLP with
PyTorch's default init, trained 40 epochs with Adam; cross-entropy on logits."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "not": ["ND103"],
    "source": "trained small model on a scikit-learn bundled dataset (brief: healthy controls)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    m = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    x, y = bd.wine()
    return tk.fit(m, x, y, nn.CrossEntropyLoss(), lr=3e-3, epochs=40, batch=32)


def sample_batch():
    x, y = bd.wine()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
