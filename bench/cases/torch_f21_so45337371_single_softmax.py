"""SO 45337371 (DeepLocalize; defects4ML): random uniform inputs; Dense(60)+ReLU -> Dense(50)+ReLU ->
Dense(1)+softmax; binary cross-entropy. A softmax over one unit is always 1.0: every gradient is
exactly zero. Trap: all-zero gradients are not dying ReLU nor vanishing gradients."""

import numpy as np
import torch
from torch import nn

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND401", "ND301", "ND101", "ND302"],
    "source": "SO 45337371 via DeepLocalize/defects4ML (BENCHMARK-CASES F21)",
    "gate": True,
}


def build_model():
    return nn.Sequential(nn.Linear(20, 60), nn.ReLU(), nn.Linear(60, 50), nn.ReLU(), nn.Linear(50, 1),
                         nn.Softmax(dim=1))


def sample_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(256, 20)).astype(np.float32)
    y = (x.sum(1) > 10).astype(np.float32)[:, None]
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.BCELoss()
