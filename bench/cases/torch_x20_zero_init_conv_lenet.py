"""NeuraLint Synthetic Samples TF_lenet_zeros_init, torch form: a LeNet whose second conv and hidden
dense kernels are zero (the first conv and the head are random); their biases are zero too, as
TensorFlow initializes them. The zero layers pass nothing on, their units stay identical, and the
ReLUs behind them see an all-zero input (not dead units in ND401's sense). Digits 8x8."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND201"],
    "not": ["ND101", "ND203", "ND301", "ND401"],
    "source": "NeuraLint Synthetic Samples TF_lenet_zeros_init.py (BENCHMARK-CASES F25)",
}


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4, 64)
        self.fc2 = nn.Linear(64, 10)
        for layer in (self.conv2, self.fc1):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = nn.functional.max_pool2d(torch.relu(self.conv2(h)), 2)
        h = nn.functional.max_pool2d(h, 2).flatten(1)
        return self.fc2(torch.relu(self.fc1(h)))


def build_model():
    return LeNet()


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
