"""Log-transformed regression target with a zero in it: ``log(0) = -inf`` (defects4ML-style
feature-engineering bug). Diabetes (scaled features); target ``log(y - 25)`` where the smallest
target is exactly 25."""

import numpy as np
import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND102", "ND303"],
    "not": ["ND101", "ND201", "ND401"],
    "source": "defects4ML wrong-loss/NaN family; TheDeepChecker pitfalls 'NaN in data'",
}


def build_model():
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    from sklearn.datasets import load_diabetes

    d = load_diabetes(scaled=True)
    x = bd.standardize(d.data)[:256]
    with np.errstate(divide="ignore"):
        t = np.log(d.target[:256] - d.target.min()).astype(np.float32)
    if np.isfinite(t).all():  # make sure the zero is in the probe batch
        t[0] = -np.inf
    return torch.from_numpy(x), torch.from_numpy(t)[:, None]


loss_fn = nn.MSELoss()
