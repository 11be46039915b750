"""AUTOTRAINER mutant family "deep sigmoid" (Circle models 5ab0aeda, c632dcbd, ...): 12 hidden
Dense(5)+sigmoid layers, He-uniform, sigmoid output, binary cross-entropy. Same mechanism as F01,
deeper."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND301", "ND502"],
    "not": ["ND101", "ND302", "ND401"],
    "source": "AUTOTRAINER Circle mutants, deep sigmoid (DeepDiagnosis Models_Circle.py; BENCHMARK-CASES F05)",
    "seeds": 2,
}


def build_model():
    return tk.dense_stack([2] + [5] * 12 + [1], "sigmoid", "he_uniform", out_act="sigmoid")


def sample_batch():
    x, y = bd.circle()
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCELoss()
