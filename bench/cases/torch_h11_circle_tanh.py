"""Healthy control (BENCHMARK-CASES H04 / H01): F01 with tanh - 8 x Dense(5)+tanh, He-uniform, sigmoid
output into BCELoss, the AUTOTRAINER-"normal" family (measured gradient ratio 0.98). ND502 is allowed
(not scored): nine plain weight layers."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "allow": ["ND502"],
    "source": "BENCHMARK-CASES H04; AUTOTRAINER-normal tanh MLPs (H01)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    return tk.dense_stack([2] + [5] * 8 + [1], "tanh", "he_uniform", out_act="sigmoid")


def sample_batch():
    x, y = bd.circle()
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCELoss()
