"""SO 55776436 (NeuraLint SO sample): Conv1D -> Dropout(0.5) -> BatchNorm -> ReLU, twice, on
standardized sine sequences (4 channels, 20 steps)."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND501"],
    "not": ["ND101", "ND201", "ND301"],
    "source": "SO 55776436 via NeuraLint sample_buggy_scripts/SO Samples (BENCHMARK-CASES F28)",
}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(4, 16, 3, padding=1), nn.Dropout(0.5), nn.BatchNorm1d(16), nn.ReLU(),
            nn.Conv1d(16, 16, 3, padding=1), nn.Dropout(0.5), nn.BatchNorm1d(16), nn.ReLU(),
        )
        self.head = nn.Linear(16, 1)

    def forward(self, x):  # x: (batch, steps, features)
        h = self.body(x.transpose(1, 2))
        return self.head(h.mean(dim=2))


def build_model():
    return Net()


def sample_batch():
    x, y = bd.sequences()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.MSELoss()
