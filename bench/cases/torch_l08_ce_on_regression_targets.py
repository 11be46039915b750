"""Cross-entropy trained on regression targets (issue 16): linnerud's three standardized physiological
targets (negative entries, rows not summing to 1) given to ``nn.CrossEntropyLoss`` as class
probabilities, on a linear 3-unit head. The loss reads each target row as a distribution; a regression
needs MSE. Linnerud tiled to 40 rows."""

import _benchdata as bd
import numpy as np
import torch
from sklearn.datasets import load_linnerud
from torch import nn

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND505", "ND510"],
    "source": "issue 16: cross-entropy for a multi-output regression (soft-target CE on real-valued targets)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 3))


def sample_batch():
    d = load_linnerud()
    x, y = bd.standardize(d.data), bd.standardize(d.target)
    return torch.from_numpy(np.tile(x, (2, 1))), torch.from_numpy(np.tile(y, (2, 1)))


loss_fn = nn.CrossEntropyLoss()
