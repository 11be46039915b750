"""AUTOTRAINER mutant family "tiny-uniform init, deep ReLU" (Circle 8de47bdc, 10702695, ...).

8 hidden Dense(5)+ReLU with Keras 2's RandomUniform(-0.05, 0.05) kernels, He-uniform output,
sigmoid + binary cross-entropy. Every layer's gradient is ~1e-11 while the first/last ratio is
~8, so a ratio-only rule misses it; the activations shrink ~0.1x per layer.
"""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND301", "ND203", "ND403", "ND502"],
    "not": ["ND101", "ND302", "ND303"],
    "source": "AUTOTRAINER Circle mutants, RandomUniform(+-0.05) deep ReLU (BENCHMARK-CASES F06)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    return tk.dense_stack([2] + [5] * 8 + [1], "relu", "uniform005", out_act="sigmoid", out_init="he_uniform")


def sample_batch():
    x, y = bd.circle()
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCELoss()
