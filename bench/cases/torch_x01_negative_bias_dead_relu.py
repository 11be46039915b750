"""A ReLU layer whose biases start at -5 is 100% dead at initialization (BENCHMARK-CASES F30 note;
TheDeepChecker pitfalls "dead ReLU", SO 53749895/49891163). Digits/16 MLP, fc2.bias = -5: no unit
of the second layer ever fires, so no gradient reaches fc1 or fc2."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND401", "ND304"],
    "not": ["ND101", "ND201", "ND202", "ND203", "ND302"],
    "source": "BENCHMARK-CASES F30 (bias -5 control); TheDeepChecker pitfalls_data dead ReLU (SO 53749895)",
    "gate": True,
}


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 10)
        nn.init.constant_(self.fc2.bias, -5.0)

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def build_model():
    return MLP()


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
