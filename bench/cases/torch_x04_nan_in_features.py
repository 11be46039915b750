"""Missing values in a tabular dataset reach the model as NaN (TheDeepChecker pitfalls "NaN in data",
SO 53640858): standardized breast cancer with 2% of the entries of three columns set to NaN (as a
pandas ``to_numpy()`` of a frame with gaps gives). The loss and every gradient become NaN."""

import numpy as np
import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND102", "ND303"],
    "not": ["ND101", "ND201", "ND401", "ND503"],
    "source": "TheDeepChecker pitfalls_data 'NaN in data' (SO 53640858)",
    "gate": True,
}


def build_model():
    return nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    rng = np.random.default_rng(0)
    for col in (3, 13, 23):
        x[rng.random(len(x)) < 0.02, col] = np.nan
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCEWithLogitsLoss()
