"""Weights 3x the He standard deviation in a 6-layer plain ReLU MLP (TheDeepChecker "activation std
outside [0.5, 2]"; Glorot & Bengio 2010): the activation RMS grows ~3x per layer, ~250x from the first
hidden layer to the last. The variance is 9x He, inside ND203's 10x band on purpose: only the drift
across depth shows it. Digits/16."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND403"],
    "not": ["ND101", "ND201", "ND202", "ND301"],
    "source": "TheDeepChecker activation-std check; Glorot & Bengio 2010 (signal propagation)",
    "seeds": 2,
}


def build_model():
    m = tk.dense_stack([64] + [64] * 6 + [10], "relu", "he_normal")
    with torch.no_grad():
        for lin in list(m)[:-1]:
            if isinstance(lin, nn.Linear):
                lin.weight.mul_(3.0)
    return m


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
