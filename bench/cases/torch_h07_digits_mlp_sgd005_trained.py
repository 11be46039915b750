"""Healthy control (BENCHMARK-CASES H07): digits/16, 64 -> 128 -> 128 -> 10 ReLU trained 10 epochs of
SGD at lr 0.05 (batch 32) inside build_model; the recipe measured 2% / 7% dead units and accuracy
0.92. Same network as torch_f30 (lr 2.0)."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "BENCHMARK-CASES H07 (control in F30)",
    "seeds": 2,
}


def build_model():
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    x, y = bd.digits_all()
    return tk.fit(m, x, y, nn.CrossEntropyLoss(), opt="sgd", lr=0.05, epochs=10, batch=32)


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
