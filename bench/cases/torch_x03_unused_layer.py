"""A layer defined in ``__init__`` but forgotten in ``forward`` (a refactoring left ``self.fc2``
unused): it is trainable, counted in the parameters, and never learns. Breast cancer (standardized)."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND304"],
    "not": ["ND101", "ND301", "ND401", "ND503"],
    "source": "netdoctor catalogue ND304 (disconnected layer); Humbatova et al. taxonomy 'missing layer / wrong connection'",
}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(30, 32)
        self.fc2 = nn.Linear(32, 32)  # never used below
        self.out = nn.Linear(32, 1)

    def forward(self, x):
        return self.out(torch.relu(self.fc1(x)))


def build_model():
    return Net()


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCEWithLogitsLoss()
