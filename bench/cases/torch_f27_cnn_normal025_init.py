"""TheDeepChecker wrong_init/baseCNN_random: conv kernels N(0, 0.25^2) instead of He-normal. For
the second 5x5 conv (fan-in 5*5*32 = 800, He std 0.05) this is 5x too large in std (25x in
variance). Digits 8x8 stand in for MNIST."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND203"],
    "not": ["ND201", "ND202", "ND101", "ND301"],
    "source": "TheDeepChecker buggy_synthetic_programs/wrong_init/baseCNN_random (BENCHMARK-CASES F27)",
    "gate": True,
}


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64 * 4 * 4, 10)
        for m in (self.conv1, self.conv2, self.fc):
            nn.init.normal_(m.weight, 0.0, 0.25)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = self.pool(torch.relu(self.conv2(h)))
        return self.fc(h.flatten(1))


def build_model():
    return CNN()


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x.reshape(-1, 1, 8, 8)), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
