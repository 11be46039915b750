"""Healthy control (issue 16): the correct twin of the BCELoss-on-a-linear-head case: breast cancer
(standardized), one linear output unit and ``nn.BCEWithLogitsLoss``."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "not": ["ND503", "ND303", "ND505", "ND510"],
    "source": "issue 16 healthy control: BCEWithLogitsLoss on a linear head",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y.astype("float32")).reshape(-1, 1)


loss_fn = nn.BCEWithLogitsLoss()
