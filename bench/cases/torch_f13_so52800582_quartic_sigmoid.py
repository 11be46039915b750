"""SO 52800582 (DeepLocalize; DeepFD GT: missing preprocess): x from -100 to 100, y = x**4 (up to
1e8), 1 -> Dense(50)+sigmoid -> Dense(50)+ELU -> Dense(1), Glorot, MSE. Unscaled inputs push most
first-layer sigmoid units into saturation."""

import numpy as np
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND101", "ND402"],
    "not": ["ND401", "ND201", "ND202"],
    "source": "SO 52800582 via DeepLocalize (BENCHMARK-CASES F13)",
}


def build_model():
    m = nn.Sequential(nn.Linear(1, 50), nn.Sigmoid(), nn.Linear(50, 50), nn.ELU(), nn.Linear(50, 1))
    for lin in (m[0], m[2], m[4]):
        tk.init_(lin.weight, "glorot_uniform")
        nn.init.zeros_(lin.bias)
    return m


def sample_batch():
    x = np.linspace(-100, 100, 256, dtype=np.float32)[:, None]
    return torch.from_numpy(x), torch.from_numpy(x ** 4)


loss_fn = nn.MSELoss()
