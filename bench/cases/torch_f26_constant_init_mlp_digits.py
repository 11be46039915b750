"""TheDeepChecker wrong_init/*_constant (constant 0.01) / NeuraLint TF_lenet_constant_init, MLP
analogue on digits/16: every kernel is 0.01, so all units of a layer compute the same value and get
the same gradient forever."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND202"],
    "not": ["ND201", "ND401", "ND101"],
    "source": "TheDeepChecker buggy_synthetic_programs/wrong_init (constant 0.01) (BENCHMARK-CASES F26)",
    "gate": True,
}


def build_model():
    return tk.dense_stack([64, 32, 32, 10], "relu", "const:0.01")


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
