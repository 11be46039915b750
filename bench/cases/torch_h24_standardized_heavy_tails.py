"""Trap (RULES.md: the min/max input rule "flags good standardized data with outliers"): lognormal
income-like features, each standardized with its own mean and std, so the per-feature scale is 1 while
single values reach 10-20 standard deviations. ReLU MLP, cross-entropy."""

import numpy as np
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "not": ["ND103"],
    "source": "RULES.md 'What other tools use' (UMLAUT/DeepDiagnosis min < -1 or max > 1); catalogue ND101 ('outliers do not matter')",
    "gate": True,
}


def build_model():
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


def sample_batch():
    rng = np.random.default_rng(0)
    raw = rng.lognormal(mean=0.0, sigma=1.2, size=(256, 8))
    x = ((raw - raw.mean(0)) / raw.std(0)).astype(np.float32)
    y = (raw[:, 0] + raw[:, 1] > np.median(raw[:, 0] + raw[:, 1])).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
