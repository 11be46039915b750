"""Dropout feeding a BatchNorm (Li et al., "Understanding the Disharmony between Dropout and Batch
Normalization", CVPR 2019; SO 39691902 in TheDeepChecker's pitfalls). Wine (standardized):
Linear -> ReLU -> Dropout(0.5) -> BatchNorm1d -> Linear."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND501"],
    "not": ["ND101", "ND301", "ND302", "ND401", "ND201"],
    "source": "SO 39691902 (TheDeepChecker pitfalls: batchnorm-dropout disharmony); BENCHMARK-CASES F28",
    "gate": True,
}


def build_model():
    return nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(64), nn.Linear(64, 3))


def sample_batch():
    x, y = bd.wine()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
