"""A ``.detach()`` left in ``forward`` cuts the encoder off the loss (TheDeepChecker pitfalls
"unchanged weights"; netdoctor catalogue ND304: frozen by accident). Wine (standardized) classifier:
the two encoder layers never receive a gradient."""

import _benchdata as bd
import torch
from torch import nn

EXPECT = {
    "raise": ["ND304"],
    "not": ["ND101", "ND301", "ND401", "ND201"],
    "source": "netdoctor catalogue ND304 example (.detach() in forward); TheDeepChecker 'unchanged parameters' check",
    "gate": True,
}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        h = self.encoder(x).detach()  # the fault
        return self.head(h)


def build_model():
    return Net()


def sample_batch():
    x, y = bd.wine()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
