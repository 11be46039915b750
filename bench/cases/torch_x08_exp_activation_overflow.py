"""AUTOTRAINER mutant family "exponential activation" (Circle 0ae2cd88, 0eb8d545, ...; DeepDiagnosis:
"Numerical Problem Forward"): 10 hidden Dense(5) each followed by exp, He-uniform, sigmoid output,
binary cross-entropy (here on the logits, so that torch's BCELoss range check does not stop the run
first). The activations overflow to Inf after a few layers; loss and gradients are NaN."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn


class Exp(nn.Module):
    def forward(self, x):
        return torch.exp(x)


EXPECT = {
    "raise": ["ND303", "ND502"],
    "not": ["ND101", "ND201", "ND401"],
    "source": "AUTOTRAINER Circle mutants, exponential activations (BENCHMARK-CASES F04)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    mods = []
    sizes = [2] + [5] * 10
    for a, b in zip(sizes[:-1], sizes[1:]):
        lin = nn.Linear(a, b)
        tk.init_(lin.weight, "he_uniform")
        nn.init.zeros_(lin.bias)
        mods += [lin, Exp()]
    mods += [nn.Linear(5, 1)]
    return nn.Sequential(*mods)


def sample_batch():
    x, y = bd.circle()
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCEWithLogitsLoss()
