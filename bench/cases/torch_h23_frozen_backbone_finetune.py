"""Trap (catalogue ND304: "frozen by accident" vs on purpose): transfer-learning setup whose encoder
is frozen explicitly with ``requires_grad_(False)``; only the new head trains. Standardized wine."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "netdoctor catalogue ND304 (explicit freezing is not a fault); standard fine-tuning recipe",
}


class FineTune(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.encoder.requires_grad_(False)
        self.head = nn.Linear(64, 3)

    def forward(self, x):
        return self.head(self.encoder(x))


def build_model():
    return FineTune()


def sample_batch():
    x, y = bd.wine()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
