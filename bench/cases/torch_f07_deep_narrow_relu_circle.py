"""AUTOTRAINER mutant family "deep narrow ReLU" (Circle 8e28bdef, 46edb7df, e8a6e959): 16 hidden
Dense(5)+ReLU, He-uniform, sigmoid output. Five units per layer die easily: at initialization some
layer has most of its units dead on every sample in most seeds (seed-dependent)."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND401", "ND502"],
    "not": ["ND101", "ND303"],
    "source": "AUTOTRAINER Circle mutants, 16 x Dense(5) ReLU (BENCHMARK-CASES F07)",
    "seeds": 5,
    "note": "stochastic: plain torch measures a layer with >50% of its units dead on every sample in seeds 0-3, not in seed 4 (ceiling 0.8)",
}


def build_model():
    return tk.dense_stack([2] + [5] * 16 + [1], "relu", "he_uniform", out_act="sigmoid")


def sample_batch():
    x, y = bd.circle()
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCELoss()
