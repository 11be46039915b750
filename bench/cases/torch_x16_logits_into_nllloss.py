"""Raw logits into ``nn.NLLLoss`` (which expects log-probabilities; TheDeepChecker
missing_softmax / wrong_softmax_impl family). Wine (standardized)."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND101", "ND201", "ND301", "ND401"],
    "source": "TheDeepChecker buggy_synthetic_programs/missing_softmax",
}


def build_model():
    return nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))


def sample_batch():
    x, y = bd.wine()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.NLLLoss()
