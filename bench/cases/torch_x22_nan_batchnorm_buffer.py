"""A corrupted checkpoint whose BatchNorm running mean contains NaN (netdoctor catalogue ND204:
"parameters or buffers"). In training mode BatchNorm normalizes with the batch statistics, so the
probe's loss and gradients stay finite; the NaN surfaces at inference (``model.eval()``). Wine
(standardized) MLP with BatchNorm."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND204"],
    "not": ["ND101", "ND201", "ND303", "ND401"],
    "source": "netdoctor catalogue ND204 (buffers); defects4ML 013 checkpoint-load bug",
}


def build_model():
    m = nn.Sequential(nn.Linear(13, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))
    with torch.no_grad():
        m[1].running_mean[4] = float("nan")
    return m


def sample_batch():
    x, y = bd.wine()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
