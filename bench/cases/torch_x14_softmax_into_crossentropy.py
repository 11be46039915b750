"""Softmax output into ``nn.CrossEntropyLoss`` (which applies log-softmax itself): NeuraLint
"redundant softmax", TheDeepChecker redundant_softmax, SO 50032197. Digits/16."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND201", "ND301", "ND401", "ND402"],
    "source": "TheDeepChecker redundant_softmax; SO 50032197 (TheDeepChecker pitfalls)",
    "gate": True,
}


def build_model():
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
