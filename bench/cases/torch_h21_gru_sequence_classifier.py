"""Healthy control: bidirectional ``nn.GRU`` (hidden 32) classifying standardized sine sequences by
whether the next value is positive; linear head, cross-entropy."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "source": "torch.nn.GRU (brief: recurrent real-network controls)",
}


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 32, batch_first=True, bidirectional=True)
        self.head = nn.Linear(64, 2)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def build_model():
    return Classifier()


def sample_batch():
    x, y = bd.sequences()
    return torch.from_numpy(x), torch.from_numpy((y[:, 0] > 0).astype("int64"))


loss_fn = nn.CrossEntropyLoss()
