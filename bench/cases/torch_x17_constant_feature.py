"""A constant column slipped into the features (a default-filled database column): wine
(standardized) plus a column of ones."""

import numpy as np
import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND103"],
    "not": ["ND101", "ND102", "ND201", "ND401"],
    "source": "netdoctor catalogue ND103; TheDeepChecker pre-training data checks",
}


def build_model():
    return nn.Sequential(nn.Linear(14, 32), nn.ReLU(), nn.Linear(32, 3))


def sample_batch():
    x, y = bd.wine()
    x = np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
