"""Healthy control: 2-layer ``nn.LSTM`` (hidden 32) forecasting the next value of standardized noisy
sine sequences, linear head on the last step, MSE."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "torch.nn.LSTM (BENCHMARK-CASES section 4: real-network controls)",
    "seeds": 2,
    "gate": True,
}


class Forecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 32, num_layers=2, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def build_model():
    return Forecaster()


def sample_batch():
    x, y = bd.sequences()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.MSELoss()
