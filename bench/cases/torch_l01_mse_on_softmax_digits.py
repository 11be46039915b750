"""MSE on softmax probabilities (issue 16, the DeepDiagnosis/AUTOTRAINER "wrong loss" family): digits,
64 -> 64 ReLU -> 10 softmax, trained against one-hot targets with MSE. The softmax Jacobian shrinks
the error: the logits get ~0.02x the gradient cross-entropy would send."""

import _benchdata as bd
import torch
import torch.nn.functional as F
from torch import nn

EXPECT = {
    "raise": ["ND505"],
    "not": ["ND503", "ND301", "ND101", "ND506", "ND507"],
    "source": "issue 16: MSE on softmax outputs (AUTOTRAINER/DeepDiagnosis wrong-loss family)",
}


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn(output, target):
    return F.mse_loss(output, F.one_hot(target, 10).float())
