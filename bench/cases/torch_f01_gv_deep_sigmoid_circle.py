"""AUTOTRAINER's vanishing-gradient demo, re-expressed in torch.

Circle data; 2 -> 8 x Dense(5)+sigmoid -> Dense(1)+sigmoid, He-uniform kernels, zero biases,
binary cross-entropy on probabilities. The weight gradient shrinks ~1e-6x from the last layer to
the first. Inputs are within +-1.2: no input-scale problem.
"""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND301", "ND502"],
    "not": ["ND101", "ND302", "ND303", "ND401"],
    "source": "AUTOTRAINER demo_case/Gradient_Vanish_Case (BENCHMARK-CASES F01)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    return tk.dense_stack([2] + [5] * 8 + [1], "sigmoid", "he_uniform", out_act="sigmoid")


def sample_batch():
    x, y = bd.circle()
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCELoss()
