"""Healthy control (BENCHMARK-CASES H03): F01 repaired - the same 8 x Dense(5) on Circle with ReLU and
He-uniform instead of sigmoid (measured first/last gradient ratio 0.10, no NaN). Logits into
BCEWithLogitsLoss. Not scored here: ND502 (nine plain weight layers: a structural warning) and ND401
(5-unit ReLU layers do die at initialization: with seed 0 one layer has 3 of 5 units dead on every
sample, measured with plain torch). The recipe calls it healthy for its gradients."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "allow": ["ND502", "ND401"],
    "source": "BENCHMARK-CASES H03 (F01 repaired)",
    "seeds": 3,
}


def build_model():
    return tk.dense_stack([2] + [5] * 8 + [1], "relu", "he_uniform")


def sample_batch():
    x, y = bd.circle()
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCEWithLogitsLoss()
