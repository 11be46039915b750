"""``nn.BCELoss`` on a linear head (issue 16): breast cancer (standardized), one linear output unit and
BCELoss, which expects probabilities and raises on values outside [0, 1]. Before, the check itself
failed with the loss's RuntimeError."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND303"],
    "source": "issue 16: BCELoss on an unbounded linear output (missing sigmoid)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y.astype("float32")).reshape(-1, 1)


loss_fn = nn.BCELoss()
