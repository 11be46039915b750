"""Trap (catalogue ND101: "a torch module subtracting a mean is fine"): raw breast-cancer features
(worst area up to 4254) standardized inside the model by a module holding the training mean and std
as buffers. What the first Linear sees is unit scale."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "not": ["ND103"],
    "source": "netdoctor catalogue ND101 (in-model standardization); BENCHMARK-CASES section 4 (Keras Normalization analogue)",
    "gate": True,
}


class Standardize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean))
        self.register_buffer("std", torch.as_tensor(std))

    def forward(self, x):
        return (x - self.mean) / self.std


def build_model():
    x, _ = bd.breast_cancer(n=569)
    return nn.Sequential(Standardize(x.mean(0), x.std(0)), nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))


def sample_batch():
    x, y = bd.breast_cancer()
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCEWithLogitsLoss()
