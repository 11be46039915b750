"""256-wide ReLU MLP initialized N(0, 1) (netdoctor ND302 docstring example; Pascanu et al. 2013):
each layer multiplies the signal by ~sqrt(256/2) = 11. Ground truth for ND302, measured with plain
torch: the hidden layers' gradient norms are 8-16x their weight norms and one SGD step at lr 0.01
multiplies the loss by 11-12x (seeds 0, 1). Digits/16."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND302", "ND203"],
    "not": ["ND101", "ND201", "ND301"],
    "source": "netdoctor catalogue ND302 example; TheDeepChecker wrong_init (too-large random init)",
    "gate": True,
}


def build_model():
    return tk.dense_stack([64, 256, 256, 256, 10], "relu", "normal1")


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
